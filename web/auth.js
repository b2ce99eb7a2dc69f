// Sign-in with Cognito's own JSON API, by SRP (the password never leaves the page); tokens live
// in sessionStorage (gone with the tab).
import { cognitoSentence, displayName, tokenExpiryMs } from './logic.js';
import { clientPair, passwordClaim } from './srp.js';

const KEY = 'snapglow.session';
const EARLY_MS = 60000; // refresh a minute before the access token expires

export class AuthError extends Error {
  constructor(message, network = false) {
    super(message);
    Object.assign(this, { network });
  }
}

export function createAuth(cognito, onSignedOut) {
  let session = load();
  let refreshing = null;
  let timer = 0;

  function load() {
    try {
      const s = JSON.parse(sessionStorage.getItem(KEY) || 'null');
      return s && s.accessToken && s.refreshToken ? s : null;
    } catch {
      return null;
    }
  }

  function save(s) {
    session = s;
    if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
    else sessionStorage.removeItem(KEY);
    schedule();
  }

  function schedule() {
    clearTimeout(timer);
    const exp = session ? tokenExpiryMs(session.accessToken) : 0;
    if (!exp) return;
    const wait = Math.max(5000, exp - EARLY_MS - Date.now());
    timer = setTimeout(() => refresh().catch(() => {}), Math.min(wait, 2 ** 31 - 1));
  }

  /** Cognito's public API: one call, answered as JSON (or a network failure). */
  function cognitoCall(target, body, init = {}) {
    return fetch(cognito.endpoint, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/x-amz-json-1.1',
        'X-Amz-Target': `AWSCognitoIdentityProviderService.${target}`,
      },
      body: JSON.stringify(body),
      ...init,
    });
  }

  /** One call of the sign-in service: its JSON answer, or the AuthError a person can read. */
  async function answered(target, request, during = 'signin') {
    let res;
    try {
      res = await cognitoCall(target, request);
    } catch {
      throw new AuthError('Cannot reach the sign-in service; check your connection and try again.', true);
    }
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new AuthError(cognitoSentence(body.__type || res.headers.get('x-amzn-errortype'), during));
    return body;
  }

  /** The tokens of an answer that carries them; an answer asking for another step is refused. */
  function tokensOf(body) {
    const r = body.AuthenticationResult;
    if (!r || !r.AccessToken) {
      throw new AuthError(body.ChallengeName
        ? 'This account needs an extra sign-in step that this page does not support.'
        : 'Sign-in failed; please try again.');
    }
    return r;
  }

  async function initiate(flow, params, during) {
    return tokensOf(await answered('InitiateAuth', { AuthFlow: flow, ClientId: cognito.clientId, AuthParameters: params }, during));
  }

  async function signIn(username, password) {
    const pair = clientPair();
    const started = await answered('InitiateAuth', {
      AuthFlow: 'USER_SRP_AUTH',
      ClientId: cognito.clientId,
      AuthParameters: { USERNAME: username, SRP_A: pair.A.toString(16) },
    });
    if (started.ChallengeName !== 'PASSWORD_VERIFIER') return save(sessionOf(tokensOf(started)));
    const claim = await passwordClaim({ poolId: cognito.userPoolId, password, pair, challenge: started.ChallengeParameters });
    const r = tokensOf(await answered('RespondToAuthChallenge', {
      ChallengeName: 'PASSWORD_VERIFIER',
      ClientId: cognito.clientId,
      ChallengeResponses: claim,
      ...(started.Session ? { Session: started.Session } : {}),
    }));
    save(sessionOf(r));
  }

  /**
   * Registers an account: the pool emails a code to confirm it (the name is the pool's standard
   * `name` attribute, which the API seeds the profile from). Answers where the code went.
   * Self sign-up sends the password itself, over TLS, once: SRP needs a verifier the pool makes
   * from it.
   */
  async function signUp({ username, name, email, password }) {
    const answer = await answered('SignUp', {
      ClientId: cognito.clientId,
      Username: username,
      Password: password,
      UserAttributes: [{ Name: 'email', Value: email }, { Name: 'name', Value: name }],
    }, 'signup');
    return answer.CodeDeliveryDetails?.Destination || email;
  }

  async function confirmSignUp(username, code) {
    await answered('ConfirmSignUp', { ClientId: cognito.clientId, Username: username, ConfirmationCode: code }, 'signup');
  }

  async function resendCode(username) {
    const answer = await answered('ResendConfirmationCode', { ClientId: cognito.clientId, Username: username }, 'signup');
    return answer.CodeDeliveryDetails?.Destination || '';
  }

  const sessionOf = (r) => ({ accessToken: r.AccessToken, idToken: r.IdToken, refreshToken: r.RefreshToken });

  /** One refresh at a time; the answer carries no new refresh token, so the old one is kept. */
  function refresh() {
    if (!session) return Promise.reject(new AuthError('Please sign in.'));
    if (!refreshing) {
      const { refreshToken } = session;
      refreshing = initiate('REFRESH_TOKEN_AUTH', { REFRESH_TOKEN: refreshToken }, 'refresh')
        .then((r) => {
          save({ accessToken: r.AccessToken, idToken: r.IdToken, refreshToken: r.RefreshToken || refreshToken });
        })
        .catch((e) => {
          if (!e.network) signOut(e.message); // offline: keep the session, a later call tries again
          throw e;
        })
        .finally(() => { refreshing = null; });
    }
    return refreshing;
  }

  /** A usable access token, refreshed first when it is about to expire. */
  async function token() {
    if (!session) throw new AuthError('Please sign in.');
    const exp = tokenExpiryMs(session.accessToken);
    if (exp && exp - Date.now() < EARLY_MS / 2) await refresh();
    return session.accessToken;
  }

  /**
   * Forgets the tokens and revokes the refresh token, so that a copy of it (another tab, a
   * stolen session) cannot mint new access tokens for its 30 days. The access token lives out
   * its hour: API Gateway checks signatures and expiry, not revocation. `keepalive` lets the
   * revocation finish if the page is closing; a failed one is not retried (the token still
   * expires), and the page signs out either way.
   */
  function signOut(reason) {
    const was = session;
    save(null);
    if (!was) return;
    cognitoCall('RevokeToken', { Token: was.refreshToken, ClientId: cognito.clientId }, { keepalive: true })
      .catch(() => {});
    onSignedOut(reason || '');
  }

  schedule();
  return {
    signIn, signUp, confirmSignUp, resendCode, refresh, token, signOut,
    get signedIn() { return !!session; },
    get name() { return session ? displayName(session.accessToken, session.idToken) : ''; },
  };
}
