// A certified OpenID provider (oidc-provider) on 127.0.0.1 for the oauth-audit CLI tests.
//
//   node server.js PORT
//
// Prints one JSON line when it listens:
// {"ready":true,"issuer":...,"refresh_token":...,"refresh_tokens":[...]}.
// Test-only secrets: every client secret and key here exists for this process alone.
//
// Resources (RFC 8707 resource indicators):
//   https://orders.example/  JWT access tokens (RS256), audience orders-api, 5 minutes
//   https://short.example/   the same, valid for 1 second (expired-token scenarios)
//   https://opaque.example/  opaque access tokens: oidc-provider introspects and revokes
//                            only those, not JWTs
//
// Clients:
//   service      client_credentials                       (secret: service-secret)
//   app          refresh_token (authorization_code)      (secret: app-secret)
//   oauth-audit  introspects tokens for the proxy         (secret: introspector-secret)
//   rp           an OpenID relying party: authorization code with PKCE, pushed
//                authorization requests (RFC 9126), UserInfo, RP-Initiated Logout
//                (secret: rp-secret); its access tokens are for UserInfo (no resource)
//
// Logins need no browser: GET /interaction/UID signs in `alice` and grants what the client
// asked for (a test-only stand-in for the login and consent pages). PAR, UserInfo and
// RP-Initiated Logout are oidc-provider defaults (`/request`, `/me`, `/session/end`), and
// all appear in the discovery document.
//
// Refresh tokens for `app` and user `alice` are minted at start (an authorization code flow
// needs a browser login) and printed in the ready line: `refresh_token`, and three more in
// `refresh_tokens`, each of its own grant. `rotateRefreshToken` is on: every refresh grant
// answers with a new refresh token, and a rotated one presented again is refused
// (invalid_grant) and revokes its grant.

import { generateKeyPairSync } from 'node:crypto';
import Provider, { errors } from 'oidc-provider';

const port = Number(process.argv[2] ?? process.env.PORT);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node server.js PORT');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;

const API = 'https://orders.example/';
const SHORT = 'https://short.example/';
const OPAQUE = 'https://opaque.example/';
const RESOURCE_SCOPES = 'orders:read orders:write';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = {
  ...privateKey.export({ format: 'jwk' }),
  kid: 'oidc-test-rs256',
  alg: 'RS256',
  use: 'sig',
};

const resources = {
  [API]: {
    scope: RESOURCE_SCOPES,
    audience: 'orders-api',
    accessTokenTTL: 300,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'RS256' } },
  },
  [SHORT]: {
    scope: RESOURCE_SCOPES,
    audience: 'orders-api',
    accessTokenTTL: 1,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'RS256' } },
  },
  [OPAQUE]: {
    scope: RESOURCE_SCOPES,
    audience: 'orders-api',
    accessTokenTTL: 300,
    accessTokenFormat: 'opaque',
  },
};

const configuration = {
  clients: [
    {
      client_id: 'service',
      client_secret: 'service-secret',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      scope: RESOURCE_SCOPES,
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      // RFC 8705 §3: its tokens are bound to the certificate of the TLS connection.
      client_id: 'mtls-service',
      client_secret: 'mtls-service-secret',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      scope: RESOURCE_SCOPES,
      token_endpoint_auth_method: 'client_secret_basic',
      tls_client_certificate_bound_access_tokens: true,
    },
    {
      client_id: 'app',
      client_secret: 'app-secret',
      grant_types: ['authorization_code', 'refresh_token'],
      redirect_uris: ['https://app.example/callback'],
      response_types: ['code'],
      scope: `openid offline_access ${RESOURCE_SCOPES}`,
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      client_id: 'oauth-audit',
      client_secret: 'introspector-secret',
      grant_types: [],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      client_id: 'rp',
      client_secret: 'rp-secret',
      grant_types: ['authorization_code'],
      redirect_uris: ['https://rp.example/callback'],
      post_logout_redirect_uris: ['https://rp.example/signed-out'],
      response_types: ['code'],
      scope: 'openid',
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: { keys: [signingKey] },
  scopes: ['openid', 'offline_access', 'orders:read', 'orders:write', 'admin'],
  findAccount: (ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    // RFC 9449: a token request with a DPoP proof gets tokens bound to its key.
    dPoP: { enabled: true },
    // RFC 8705: TLS ends at oauth-audit's proxy, which passes the client certificate in
    // `x-client-cert` as URL-encoded PEM (as nginx's `$ssl_client_escaped_cert`).
    mTLS: {
      enabled: true,
      certificateBoundAccessTokens: true,
      getCertificate: (ctx) => {
        const value = ctx.get('x-client-cert');
        return value ? decodeURIComponent(value) : undefined;
      },
    },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // `rp` asks for no resource: its access tokens are for UserInfo.
      defaultResource: (ctx, client, oneOf) => oneOf ?? (client?.clientId === 'rp' ? undefined : API),
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resourceIndicator) => {
        const info = resources[resourceIndicator];
        if (!info) throw new errors.InvalidTarget();
        return info;
      },
    },
  },
  rotateRefreshToken: true,
};

const provider = new Provider(issuer, configuration);
provider.on('server_error', (ctx, err) => console.error('server_error', err));

// The login and consent pages, for tests: `alice` signs in and grants what was asked.
provider.use(async (ctx, next) => {
  if (ctx.method !== 'GET' || !/^\/interaction\/[^/]+$/.test(ctx.path)) {
    await next();
    return;
  }
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const { prompt, params, session } = details;
  let result;
  if (prompt.name === 'login') {
    result = { login: { accountId: 'alice' } };
  } else {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    result = { consent: { grantId: await grant.save() } };
  }
  ctx.respond = false;
  await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: true });
});

const app = await provider.Client.find('app');
// One grant and refresh token per call: reuse of one revokes its grant, not the others.
const mintRefreshToken = async () => {
  const grant = new provider.Grant({ accountId: 'alice', clientId: 'app' });
  grant.addOIDCScope('offline_access');
  grant.addResourceScope(API, 'orders:read');
  const grantId = await grant.save();
  return new provider.RefreshToken({
    client: app,
    accountId: 'alice',
    grantId,
    gty: 'authorization_code',
    authTime: Math.floor(Date.now() / 1000),
    scope: 'offline_access orders:read',
    resource: API,
    expiresWithSession: false,
  }).save();
};
const refreshToken = await mintRefreshToken();
const refreshTokens = [];
for (let i = 0; i < 3; i += 1) refreshTokens.push(await mintRefreshToken());

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(JSON.stringify({
    ready: true, issuer, refresh_token: refreshToken, refresh_tokens: refreshTokens,
  }));
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
