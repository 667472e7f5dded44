(function () {
  var button = document.getElementById("copy");
  var token = document.getElementById("renewable-token");
  var status = document.getElementById("copied");
  if (!button || !token) { return; }
  button.addEventListener("click", function () {
    navigator.clipboard.writeText(token.textContent.trim()).then(function () {
      status.textContent = "Copied to the clipboard.";
    }, function () {
      status.textContent = "Copying failed: select the token and copy it by hand.";
    });
  });
})();
