// Keyless: @azure/web-pubsub 1.2.0 with a TokenCredential (no access key)
// against an emulator with local auth disabled, over its HTTPS listener,
// and @azure/web-pubsub-client 1.1.0 connecting with the URL the service
// SDK returns. Run by the keyless test of tests/npm_clients.rs, which sets,
// besides the WPS_* variables of helpers.mjs (for this emulator and its
// upstream):
//
// - NODE_EXTRA_CA_CERTS: a PEM file with the emulator's self-signed
//   certificate (the Azure pipeline's bearer policy refuses http://, so
//   the service client must use https);
// - WPS_HTTPS_ENDPOINT: the emulator's `https://127.0.0.1:port`;
// - WPS_TOKEN_ENDPOINT: its Entra ID token endpoint (plain http);
// - WPS_CLIENT_ID / WPS_CLIENT_SECRET: the app registration it issues
//   tokens to;
// - WPS_ISSUER: the `iss` of its tokens;
// - WPS_OTHER_AUDIENCE_TOKEN: a token of that issuer and app for another
//   audience (`api://someone-else`), which its token endpoint does not mint.
//
// The upstream accepts events only with the emulator's managed-identity
// bearer token (webpubsub::entra::EntraValidation), so every upstream
// event seen here also went through that check.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { WebPubSubServiceClient } from "@azure/web-pubsub";
import { WebPubSubClient } from "@azure/web-pubsub-client";
import { CLIENT_OPTIONS, Probe, env, uid, waitForUpstream, within } from "./helpers.mjs";

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set: this file is run by \`cargo test -p webpubsub-emulator --test npm_clients keyless\``,
    );
  }
  return value;
}

const keyless = {
  httpsEndpoint: required("WPS_HTTPS_ENDPOINT"),
  tokenEndpoint: required("WPS_TOKEN_ENDPOINT"),
  clientId: required("WPS_CLIENT_ID"),
  clientSecret: required("WPS_CLIENT_SECRET"),
  issuer: required("WPS_ISSUER"),
  otherAudienceToken: required("WPS_OTHER_AUDIENCE_TOKEN"),
};
required("NODE_EXTRA_CA_CERTS");

const SCOPE = "https://webpubsub.azure.com/.default";
const hub = env.hub;
const lobby = env.isolatedHub;

/** A token from the emulator's Entra ID (client credentials grant). */
async function fetchToken(scope) {
  const response = await fetch(keyless.tokenEndpoint, {
    method: "POST",
    body: new URLSearchParams({
      grant_type: "client_credentials",
      client_id: keyless.clientId,
      client_secret: keyless.clientSecret,
      scope,
    }),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(`token endpoint: ${response.status} ${JSON.stringify(body)}`);
  assert.equal(body.token_type, "Bearer");
  return body;
}

/**
 * A plain TokenCredential (only `getToken`, as @azure/core-auth's
 * interface asks) that gets its tokens from the emulator's token endpoint
 * and counts its calls. `scope` overrides the scope asked for;
 * `transform` rewrites the token before it is handed out.
 */
function credential({ scope, transform = (t) => t } = {}) {
  const self = {
    calls: 0,
    scopes: [],
    issued: [],
    async getToken(scopes) {
      self.calls += 1;
      const asked = [].concat(scopes);
      self.scopes.push(asked);
      const body = await fetchToken(scope ?? asked[0]);
      const token = transform(body.access_token);
      self.issued.push(token);
      return { token, expiresOnTimestamp: Date.now() + body.expires_in * 1000 };
    },
  };
  return self;
}

/**
 * A pipeline policy (after the bearer policy) recording each request's
 * method, path and Authorization header.
 */
function recorder() {
  const requests = [];
  return {
    requests,
    policy: {
      position: "perRetry",
      policy: {
        name: "keylessTestRecorder",
        sendRequest(request, next) {
          const url = new URL(request.url);
          requests.push({
            method: request.method,
            path: url.pathname,
            authorization: request.headers.get("authorization"),
          });
          return next(request);
        },
      },
    },
  };
}

/** A keyless service client on the https endpoint, with a request recorder. */
function keylessService(cred, hubName = hub) {
  const rec = recorder();
  const client = new WebPubSubServiceClient(keyless.httpsEndpoint, cred, hubName, {
    additionalPolicies: [rec.policy],
    retryOptions: { maxRetries: 0 },
  });
  return { client, requests: rec.requests };
}

function decodeJwt(token) {
  const [header, payload] = token.split(".");
  return {
    header: JSON.parse(Buffer.from(header, "base64url").toString()),
    payload: JSON.parse(Buffer.from(payload, "base64url").toString()),
  };
}

/** Starts a WebPubSubClient on `url` and waits for `connected`. */
async function connect(t, url) {
  const client = new WebPubSubClient(url, { ...CLIENT_OPTIONS });
  const probe = new Probe(client);
  t.after(() => probe.stop());
  await within("client.start()", client.start());
  probe.connected = (await probe.waitFor("connected")).value;
  return probe;
}

/** Asserts `promise` rejects with a RestError of status `status`; returns it. */
async function restError(promise, status) {
  const error = await promise.then(
    (v) => {
      throw new Error(`expected a ${status} RestError, got ${JSON.stringify(v)}`);
    },
    (e) => e,
  );
  assert.equal(error?.name, "RestError", String(error));
  assert.equal(error.statusCode, status, String(error));
  return error;
}

describe("@azure/web-pubsub with a TokenCredential, local auth disabled", () => {
  test("getClientAccessToken calls :generateToken with the bearer; the wss:// URL it returns connects", async (t) => {
    const cred = credential();
    const { client: svc, requests } = keylessService(cred);
    const userId = uid("keyless");
    const group = uid("g");
    const access = await svc.getClientAccessToken({ userId, groups: [group] });

    // The SDK asked the service (no key to sign with) ...
    assert.equal(requests.length, 1, JSON.stringify(requests));
    assert.equal(requests[0].method, "POST");
    assert.equal(requests[0].path, `/api/hubs/${hub}/:generateToken`);
    assert.equal(requests[0].authorization, `Bearer ${cred.issued[0]}`);
    assert.deepEqual(cred.scopes, [[SCOPE]]);
    // ... with a token of the emulator's Entra ID for Web PubSub.
    const bearer = decodeJwt(cred.issued[0]);
    assert.equal(bearer.header.alg, "RS256");
    assert.equal(bearer.payload.aud, "https://webpubsub.azure.com");
    assert.equal(bearer.payload.iss, keyless.issuer);

    // The client URL is on the https port, as wss://.
    const base = new URL(keyless.httpsEndpoint);
    assert.equal(access.baseUrl, `wss://${base.host}/client/hubs/${hub}`);
    assert.equal(access.url, `${access.baseUrl}?access_token=${access.token}`);
    const client = decodeJwt(access.token);
    assert.equal(client.header.alg, "HS256");
    assert.ok(client.header.kid, "a :generateToken client token names the emulator's internal key");
    assert.equal(client.payload.sub, userId);
    assert.deepEqual(client.payload["webpubsub.group"], [group]);

    // @azure/web-pubsub-client connects with it (TLS trusted through
    // NODE_EXTRA_CA_CERTS), joined to the token's group.
    const probe = await connect(t, access.url);
    assert.equal(probe.connected.userId, userId);
    await waitForUpstream(
      "the connect event (managed-identity bearer checked)",
      (e) => e.type === "connect" && e.userId === userId && e.hub === hub,
    );
    await waitForUpstream(
      "the connected event",
      (e) => e.type === "connected" && e.connectionId === probe.connectionId,
    );

    // Messages from the keyless service client reach it.
    const text = uid("to-group");
    await svc.group(group).sendToAll(text, { contentType: "text/plain" });
    const received = await probe.waitForGroupMessage((m) => m.data === text);
    assert.equal(received.value.message.group, group);
    await svc.sendToUser(userId, { hello: userId });
    await probe.waitForServerMessage((m) => m.data?.hello === userId);
    assert.equal(cred.calls, 1, "one token for every call of this client");
  });

  test("sendToAll reaches clients on both listeners: wss:// (the SDK's URL) and ws://", async (t) => {
    const cred = credential();
    const { client: svc } = keylessService(cred, lobby);
    const secure = await connect(t, (await svc.getClientAccessToken({ userId: uid("wss") })).url);
    // A client token is bound to the host:port it was generated on (its
    // `aud`), so the SDK's token works on the https port only. For a
    // ws:// client, :generateToken on the http listener, called directly
    // (the SDK sends bearer tokens over https only).
    const userId = uid("ws");
    const { token: bearer } = await cred.getToken(SCOPE);
    const response = await fetch(
      `${env.endpoint}/api/hubs/${lobby}/:generateToken?api-version=2024-12-01&userId=${userId}`,
      { method: "POST", headers: { authorization: `Bearer ${bearer}` } },
    );
    assert.equal(response.status, 200);
    const { token } = await response.json();
    const plain = await connect(t, `${env.endpoint.replace(/^http/, "ws")}/client/hubs/${lobby}?access_token=${token}`);
    assert.equal(plain.connected.userId, userId);

    const text = uid("all");
    await svc.sendToAll(text, { contentType: "text/plain" });
    await plain.waitForServerMessage((m) => m.data === text);
    await secure.waitForServerMessage((m) => m.data === text);
  });

  test("group add/remove, userExists, connectionExists, groupExists; the token is reused", async (t) => {
    const cred = credential();
    const { client: svc, requests } = keylessService(cred);
    const userId = uid("member");
    const group = uid("g");
    const probe = await connect(t, (await svc.getClientAccessToken({ userId })).url);
    const id = probe.connectionId;

    assert.equal(await svc.userExists(userId), true);
    assert.equal(await svc.userExists(uid("nobody")), false);
    assert.equal(await svc.connectionExists(id), true);
    assert.equal(await svc.connectionExists("no-such-connection"), false);
    assert.equal(await svc.groupExists(group), false);

    await svc.group(group).addConnection(id);
    assert.equal(await svc.groupExists(group), true);
    const inside = uid("in");
    await svc.group(group).sendToAll(inside, { contentType: "text/plain" });
    await probe.waitForGroupMessage((m) => m.data === inside);

    await svc.group(group).removeConnection(id);
    assert.equal(await svc.groupExists(group), false);
    await svc.group(group).addUser(userId);
    assert.equal(await svc.groupExists(group), true);
    const again = uid("again");
    await svc.group(group).sendToAll(again, { contentType: "text/plain" });
    await probe.waitForGroupMessage((m) => m.data === again);
    await svc.group(group).removeUser(userId);
    assert.equal(await svc.groupExists(group), false);
    // Nothing sent to the group after the removal arrives; a direct
    // message sent after it does, so the group one would have arrived first.
    await svc.group(group).sendToAll(uid("out"), { contentType: "text/plain" });
    const marker = uid("marker");
    await svc.sendToConnection(id, marker, { contentType: "text/plain" });
    await probe.waitForServerMessage((m) => m.data === marker);
    assert.deepEqual(probe.groupMessages().map((m) => m.data), [inside, again]);

    // Every request carried a bearer, all from one getToken call.
    assert.ok(requests.length >= 15, `${requests.length} requests`);
    assert.equal(cred.calls, 1, `${cred.calls} getToken calls for ${requests.length} requests`);
    for (const r of requests) assert.equal(r.authorization, `Bearer ${cred.issued[0]}`, r.path);
  });

  test("a token for another audience, a tampered one and garbage get 401", async () => {
    // The token endpoint mints tokens for the REST API only ...
    await assert.rejects(fetchToken("api://someone-else/.default"), /token endpoint: 400 .*invalid_scope/);
    // ... so the other audience's token was signed by the test.
    const otherAudience = credential({ transform: () => keyless.otherAudienceToken });
    const tampered = credential({
      transform: (token) => {
        const [header, payload, signature] = token.split(".");
        const flipped = signature[0] === "A" ? "B" : "A";
        return `${header}.${payload}.${flipped}${signature.slice(1)}`;
      },
    });
    const garbage = credential({ transform: () => "not-a-jwt" });
    for (const [name, cred] of [
      ["other audience", otherAudience],
      ["tampered signature", tampered],
      ["garbage", garbage],
    ]) {
      const { client: svc, requests } = keylessService(cred);
      await step(name, async () => {
        await restError(svc.sendToAll("refused", { contentType: "text/plain" }), 401);
        await restError(svc.getClientAccessToken({ userId: "u" }), 401);
        await restError(svc.userExists("u"), 401);
        assert.ok(requests.every((r) => r.authorization?.startsWith("Bearer ")), JSON.stringify(requests));
      });
    }
    assert.equal(decodeJwt(otherAudience.issued[0]).payload.aud, "api://someone-else");
  });

  test("no key: the connection string path is refused", async () => {
    // The emulator's connection string has no AccessKey: the SDK refuses it.
    assert.ok(!/accesskey=/i.test(env.connectionString), env.connectionString);
    assert.throws(() => new WebPubSubServiceClient(env.connectionString, hub), {
      name: "TypeError",
      message: /access key/,
    });

    // A made-up key: its REST tokens (HS256) are refused ...
    const made = `Endpoint=${keyless.httpsEndpoint};AccessKey=made-up-key-0123456789abcdefghij;Version=1.0;`;
    const svc = new WebPubSubServiceClient(made, hub, { retryOptions: { maxRetries: 0 } });
    await restError(svc.sendToAll("refused", { contentType: "text/plain" }), 401);
    await restError(svc.userExists("u"), 401);
    // ... and so are the client tokens it signs locally.
    const { url } = await svc.getClientAccessToken({ userId: uid("forged") });
    const client = new WebPubSubClient(url, { ...CLIENT_OPTIONS });
    const probe = new Probe(client);
    await assert.rejects(within("start() with a locally signed token", client.start()), /401/);
    assert.equal(probe.all("connected").length, 0);
  });
});

/** Runs `body`, naming `name` in its failure. */
async function step(name, body) {
  try {
    await body();
  } catch (error) {
    error.message = `${name}: ${error.message}`;
    throw error;
  }
}
