// A standard OpenID provider for the console's sign-in tests: the npm
// package oidc-provider with its development login screens (any login name,
// any password). The test names the port and the clients:
//   PORT=9000 CLIENTS='[{"client_id": ..., "client_secret": ..., "redirect_uris": [...]}]' node provider.mjs
// It prints "ready <issuer>" once it listens on 127.0.0.1.
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const clients = JSON.parse(process.env.CLIENTS).map((client) => ({
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_post',
  ...client,
}));

const provider = new Provider(issuer, {
  clients,
  pkce: { required: () => true },
  // The login name is the staff id, in the standard `sub` claim and in
  // `staff_id` (for a deployment that keeps the staff id elsewhere).
  findAccount: async (_ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, staff_id: id }),
  }),
  claims: { openid: ['sub', 'staff_id'] },
  cookies: { keys: ['only-for-tests'] },
  features: { devInteractions: { enabled: true } },
});
// The provider runs on plain http on this machine only.
provider.proxy = false;

provider.listen(port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
