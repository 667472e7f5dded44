// The peer for gatehouse's benchmarks: node oidc-provider (an OpenID
// Certified implementation) configured like the bench realm, so that
// bench/run can drive both with the same load generator in the same run.
//
// - client "svc": client_credentials, client_secret_post, RS256 JWT access
//   tokens lasting 300 s (the bench realm's accessTokenLifespan), through
//   resource indicators with a default resource, so no request parameter
//   beyond what a Keycloak client sends is needed.
// - client "svc-opaque": the same, but its default resource issues opaque
//   tokens. oidc-provider refuses to introspect JWT access tokens ("Structured
//   JWT Tokens cannot be introspected"), so its introspection is measured
//   with an opaque token looked up in the in-memory adapter.
//
// Node runs JavaScript on one thread: this server uses one core. oidc-provider
// keeps tokens in a per-process memory adapter, so it cannot be run as a
// cluster of workers without an external store; the figures are one core's.
//
// Environment: PEER_ADDR (host:port, default 127.0.0.1:9300) and
// PEER_CLIENT_SECRET (required; never printed).
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const addr = process.env.PEER_ADDR || '127.0.0.1:9300';
const secret = process.env.PEER_CLIENT_SECRET;
if (!secret) {
  console.error('peer: PEER_CLIENT_SECRET is not set');
  process.exit(2);
}
const [host, portText] = addr.split(':');
const port = Number(portText);

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256', kid: 'bench-rs256' };

const JWT_RESOURCE = 'urn:gatehouse:bench:jwt';
const OPAQUE_RESOURCE = 'urn:gatehouse:bench:opaque';
const TOKEN_TTL = 300;

const clientBase = {
  client_secret: secret,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'client_secret_post',
};

const provider = new Provider(`http://${addr}`, {
  clients: [
    { ...clientBase, client_id: 'svc' },
    { ...clientBase, client_id: 'svc-opaque' },
  ],
  jwks: { keys: [jwk] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (_ctx, client) => (client.clientId === 'svc-opaque' ? OPAQUE_RESOURCE : JWT_RESOURCE),
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => {
        if (resource === OPAQUE_RESOURCE) {
          return { scope: 'api', accessTokenFormat: 'opaque', accessTokenTTL: TOKEN_TTL };
        }
        return { scope: 'api', accessTokenFormat: 'jwt', accessTokenTTL: TOKEN_TTL, jwt: { sign: { alg: 'RS256' } } };
      },
    },
  },
  ttl: { ClientCredentials: TOKEN_TTL, AccessToken: TOKEN_TTL },
});

const server = provider.listen(port, host, () => {
  console.error(`peer: oidc-provider listening on http://${addr} (token path /token, introspection /token/introspection)`);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => server.close(() => process.exit(0)));
}
