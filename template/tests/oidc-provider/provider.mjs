// A real OpenID Connect provider for the tests: `oidc-provider`, which is
// OpenID Certified, with its built-in development login and consent pages.
//
//   node provider.mjs '{"redirectUri": "...", "audience": "..."}'
//
// Listens on a free port of 127.0.0.1, prints {"issuer": "..."} on one line,
// and exits when its standard input closes (when the test that started it
// ends, however it ends).
//
// Accounts: any login name works with any password. The account's email is
// <login>@example.com, where anything from a "+" on is left out ("dan+work"
// is a second identity with dan's address); it is verified unless the login
// starts with "unverified"; logins starting with "admin" carry the provider
// role "api-admins".
// Clients: "api-login" (authorization code + PKCE, for this API's login) and
// "reporting-service" (client credentials, a service calling this API).
import http from 'node:http';

// Standard output carries only the issuer line; oidc-provider's notices go
// to standard error with its warnings.
const announce = (line) => process.stdout.write(`${line}\n`);
console.log = console.info = (...args) => console.error(...args);

import { exportJWK, generateKeyPair } from 'jose';
import Provider, { errors } from 'oidc-provider';

const { redirectUri, audience, otherAudience } = JSON.parse(process.argv[2]);

async function signingKeys() {
  const keys = [];
  for (const [alg, options] of [['RS256', { modulusLength: 2048 }], ['ES256', {}]]) {
    const { privateKey } = await generateKeyPair(alg, { ...options, extractable: true });
    keys.push({ ...(await exportJWK(privateKey)), alg, use: 'sig', kid: `${alg.toLowerCase()}-${Date.now()}` });
  }
  return keys;
}

const providerRoles = (accountId) => (accountId.startsWith('admin') ? ['api-admins'] : []);

const configuration = {
  clients: [
    {
      client_id: 'api-login',
      client_secret: 'api-login-secret',
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    },
    {
      client_id: 'reporting-service',
      client_secret: 'reporting-service-secret',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      scope: 'notes:read',
    },
  ],
  jwks: { keys: await signingKeys() },
  scopes: ['openid', 'email', 'profile', 'notes:read', 'notes:write'],
  pkce: { required: () => true },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  async findAccount(_ctx, accountId) {
    return {
      accountId,
      async claims() {
        return {
          sub: accountId,
          email: `${accountId.split('+')[0]}@example.com`,
          email_verified: !accountId.startsWith('unverified'),
          name: `Test ${accountId}`,
        };
      },
    };
  },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (_ctx, _client, oneOf) => oneOf ?? audience,
      useGrantedResource: () => true,
      getResourceServerInfo(_ctx, resource) {
        if (resource !== audience && resource !== otherAudience) throw new errors.InvalidTarget();
        return {
          scope: 'notes:read notes:write',
          audience: resource,
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
  async extraTokenClaims(_ctx, token) {
    return { roles: token.kind === 'ClientCredentials' ? ['api-admins'] : providerRoles(token.accountId ?? '') };
  },
};

let handle = (_req, res) => res.writeHead(503).end();
const server = http.createServer((req, res) => handle(req, res));
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, configuration);
  handle = provider.callback();
  announce(JSON.stringify({ issuer }));
});

process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
