// Drives a running gatehouse with openid-client (a certified OpenID Connect
// relying-party library), the way a Node application would:
//
//   node openid.mjs ISSUER PUBLIC_CLIENT USERNAME PASSWORD CONF_CLIENT CONF_SECRET
//
// It prints one JSON object with what it observed and exits non-zero on the
// first thing that does not hold. openid-client validates the discovery
// document, the ID token (signature via JWKS, iss, aud, exp, iat, at_hash)
// and userinfo's subject itself.
import * as client from 'openid-client';

const [issuer, publicClient, username, password, confClient, confSecret] = process.argv.slice(2);
const insecure = { execute: [client.allowInsecureRequests] }; // loopback http in tests
const out = {};

function must(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
}

try {
  const pub = await client.discovery(new URL(issuer), publicClient, undefined, client.None(), insecure);
  must(pub.serverMetadata().issuer === issuer, 'discovery issuer');

  const tokens = await client.genericGrantRequest(pub, 'password', {
    username, password, scope: 'openid profile email',
  });
  const idClaims = tokens.claims();
  must(idClaims && idClaims.preferred_username === username, 'ID token preferred_username');
  must(tokens.token_type.toLowerCase() === 'bearer', 'token_type');
  out.password = { expires_in: tokens.expires_in, sub: idClaims.sub, scope: tokens.scope };

  const info = await client.fetchUserInfo(pub, tokens.access_token, idClaims.sub);
  must(info.sub === idClaims.sub, 'userinfo sub');
  out.userinfo = { preferred_username: info.preferred_username, email: info.email };

  const refreshed = await client.refreshTokenGrant(pub, tokens.refresh_token);
  must(refreshed.access_token && refreshed.access_token !== tokens.access_token, 'refreshed access token');
  out.refresh = { expires_in: refreshed.expires_in, has_id_token: !!refreshed.id_token };

  const conf = await client.discovery(new URL(issuer), confClient, confSecret, client.ClientSecretBasic(confSecret), insecure);
  const cc = await client.clientCredentialsGrant(conf, {});
  must(cc.access_token, 'client_credentials access token');
  out.client_credentials = { expires_in: cc.expires_in };

  const user = await client.tokenIntrospection(conf, refreshed.access_token);
  must(user.active === true && user.sub === idClaims.sub, 'introspection of the user token');
  // RFC 7009 lets a client revoke only its own tokens: revoke the
  // confidential client's token with its own credentials.
  const active = await client.tokenIntrospection(conf, cc.access_token);
  must(active.active === true, 'introspection active');
  await client.tokenRevocation(conf, cc.access_token);
  const after = await client.tokenIntrospection(conf, cc.access_token);
  must(after.active === false, 'introspection after revocation');
  out.revocation = { before: active.active, after: after.active };

  process.stdout.write(JSON.stringify(out) + '\n');
} catch (err) {
  process.stderr.write(String(err && err.stack || err) + '\n');
  if (err && err.cause) process.stderr.write('cause: ' + JSON.stringify(err.cause) + '\n');
  process.exit(1);
}
