package password_test

import (
	"fmt"

	"github.com/gatehouse/gatehouse/internal/password"
)

// A password credential from a Keycloak realm export verifies as it is,
// and is rehashed to argon2id at gatehouse's parameters after the login.
func ExampleFromKeycloak() {
	secretData := `{"value":"XqOWF4mNpEn++ZgyCQs5fzeqoCcAIG/OxC2ZRg4Iqos=","salt":"mx88Kn1OX2BxgpOktcbX6A==","additionalParameters":{}}`
	credentialData := `{"hashIterations":27500,"algorithm":"pbkdf2-sha256","additionalParameters":{}}`
	encoded, err := password.FromKeycloak(secretData, credentialData)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(encoded)

	h := password.NewHasher(password.DefaultParams())
	ok, rehash := h.Verify(encoded, "correct horse battery staple")
	fmt.Println(ok, rehash)
	if ok && rehash {
		encoded, _ = h.Hash("correct horse battery staple")
		fmt.Println(password.Algorithm(encoded))
	}
	// Output:
	// $pbkdf2-sha256$i=27500$mx88Kn1OX2BxgpOktcbX6A$XqOWF4mNpEn++ZgyCQs5fzeqoCcAIG/OxC2ZRg4Iqos
	// true true
	// argon2
}

// Client secrets are generated, shown once, and stored as a keyed hash.
func ExampleSecretHasher() {
	master := []byte("the master key, kept outside the database")
	s := password.NewSecretHasher(password.DeriveKey(master, "client-secret-hash"))
	secret, err := password.GenerateSecret()
	if err != nil {
		fmt.Println(err)
		return
	}
	stored := s.Hash(secret)
	fmt.Println(len(secret), s.Equal(stored, secret), s.Equal(stored, "guess"))
	// Output: 43 true false
}
