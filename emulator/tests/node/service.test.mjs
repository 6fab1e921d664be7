// @azure/web-pubsub 1.2.0 (WebPubSubServiceClient from the emulator's
// connection string) against the emulator; every call's effect is checked
// on @azure/web-pubsub-client connections or in the emulator's state.
//
// Hub-wide operations (sendToAll, closeAllConnections) use the isolated hub
// (WPS_HUB_ISOLATED), which only this file uses: node runs test files in
// parallel and tests within a file one after another.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { odata } from "@azure/web-pubsub";
import { SendMessageError, WebPubSubJsonProtocol } from "@azure/web-pubsub-client";
import {
  JSON_SUBPROTOCOL,
  PROTOCOLS,
  emulatorConnection,
  emulatorState,
  env,
  flush,
  service,
  startClient,
  uid,
  upstreamLog,
  waitForUpstream,
  waitUntil,
  within,
} from "./helpers.mjs";

const lobby = env.isolatedHub;

/** A server message as received, without sequenceId/undefined fields, binary as base64. */
function plain(message) {
  const copy = {};
  for (const [key, value] of Object.entries(message)) {
    if (value === undefined || key === "sequenceId") continue;
    copy[key] = value instanceof ArrayBuffer ? { base64: Buffer.from(value).toString("base64") } : value;
  }
  return copy;
}

const server = (dataType, data) => ({ type: "message", kind: "serverData", from: "server", dataType, data });
const fromGroup = (group, dataType, data) => ({
  type: "message",
  kind: "groupData",
  from: "group",
  group,
  dataType,
  data,
});

async function forbidden(promise) {
  const error = await within("a Forbidden ack", promise.then(
    (v) => {
      throw new Error(`expected Forbidden, got ${JSON.stringify(v)}`);
    },
    (e) => e,
  ));
  assert.ok(error instanceof SendMessageError, String(error));
  assert.equal(error.errorDetail?.name, "Forbidden");
}

function decodeJwt(token) {
  const [header, payload] = token.split(".");
  return {
    header: JSON.parse(Buffer.from(header, "base64url").toString()),
    payload: JSON.parse(Buffer.from(payload, "base64url").toString()),
  };
}

describe("@azure/web-pubsub: sending", () => {
  test("sendToAll: text, JSON object, JSON string and binary reach every protocol", async (t) => {
    const svc = service(lobby);
    const clients = [];
    for (const { make } of PROTOCOLS) {
      clients.push(await startClient(t, { hub: lobby, userId: uid("all"), protocol: make() }));
    }
    const text = uid("text");
    await svc.sendToAll(text, { contentType: "text/plain" });
    await svc.sendToAll({ hello: text, n: [1, 2] });
    await svc.sendToAll(`json ${text}`);
    await svc.sendToAll(new Uint8Array([9, 8, 7]));
    for (const client of clients) {
      await client.waitForServerMessage((m) => m.dataType === "binary");
      assert.deepEqual(client.serverMessages().map(plain), [
        server("text", text),
        server("json", { hello: text, n: [1, 2] }),
        server("json", `json ${text}`),
        server("binary", { base64: Buffer.from([9, 8, 7]).toString("base64") }),
      ]);
    }
  });

  test("sendToAll with excludedConnections skips those connections", async (t) => {
    const svc = service(lobby);
    const x = await startClient(t, { hub: lobby, userId: uid("x") });
    const y = await startClient(t, { hub: lobby, userId: uid("y") });
    const message = uid("excluded");
    await svc.sendToAll(message, { contentType: "text/plain", excludedConnections: [x.connectionId] });
    await y.waitForServerMessage((m) => m.data === message);
    await flush(x, lobby);
    assert.equal(x.serverMessages((m) => m.data === message).length, 0);
  });

  test("sendToAll with filter userId eq 'x' reaches only x", async (t) => {
    const svc = service(lobby);
    const xId = uid("x");
    const x = await startClient(t, { hub: lobby, userId: xId });
    const y = await startClient(t, { hub: lobby, userId: uid("y") });
    const message = uid("filtered");
    const filter = odata`userId eq ${xId}`;
    assert.equal(filter, `userId eq '${xId}'`);
    await svc.sendToAll(message, { contentType: "text/plain", filter });
    await x.waitForServerMessage((m) => m.data === message);
    await flush(y, lobby);
    assert.equal(y.serverMessages((m) => m.data === message).length, 0, "y does not match the filter");

    const error = await svc.sendToAll("never", { contentType: "text/plain", filter: "userId eq" }).then(
      () => null,
      (e) => e,
    );
    assert.equal(error?.name, "RestError", `an invalid filter is refused, got ${error}`);
    assert.equal(error.statusCode, 400);
  });

  test("sendToUser reaches every connection of that user and nobody else", async (t) => {
    const svc = service();
    const user = uid("user");
    const a1 = await startClient(t, { userId: user });
    const a2 = await startClient(t, { userId: user, protocol: WebPubSubJsonProtocol() });
    const other = await startClient(t, { userId: uid("other") });
    const message = { to: user };
    await svc.sendToUser(user, message);
    for (const c of [a1, a2]) {
      const got = await c.waitForServerMessage((m) => m.data?.to === user);
      assert.deepEqual(plain(got.value.message), server("json", message));
    }
    await flush(other);
    assert.equal(other.serverMessages((m) => m.data?.to === user).length, 0);
  });

  test("sendToConnection: text, JSON and binary to that connection only", async (t) => {
    const svc = service();
    const user = uid("same-user");
    const target = await startClient(t, { userId: user });
    const sibling = await startClient(t, { userId: user });
    await svc.sendToConnection(target.connectionId, "just you", { contentType: "text/plain" });
    await svc.sendToConnection(target.connectionId, { n: 42 });
    await svc.sendToConnection(target.connectionId, Buffer.from("bin"));
    await target.waitForServerMessage((m) => m.dataType === "binary");
    assert.deepEqual(target.serverMessages().map(plain), [
      server("text", "just you"),
      server("json", { n: 42 }),
      server("binary", { base64: Buffer.from("bin").toString("base64") }),
    ]);
    await flush(sibling);
    assert.equal(sibling.serverMessages().length, 1, "only the flush marker reached the sibling");
  });

  test("group(g).sendToAll: group messages without fromUserId, text and JSON; excluded connections skipped", async (t) => {
    const svc = service();
    const group = uid("news");
    const member = await startClient(t, { userId: uid("member") });
    const skipped = await startClient(t, { userId: uid("skipped") });
    const outsider = await startClient(t, { userId: uid("outsider") });
    await within("join", member.client.joinGroup(group));
    await within("join", skipped.client.joinGroup(group));
    await svc.group(group).sendToAll("headline", { contentType: "text/plain" });
    await svc.group(group).sendToAll({ story: 1 }, { excludedConnections: [skipped.connectionId] });
    await member.waitForGroupMessage((m) => m.dataType === "json");
    assert.deepEqual(member.groupMessages().map(plain), [
      fromGroup(group, "text", "headline"),
      fromGroup(group, "json", { story: 1 }),
    ]);
    await flush(skipped);
    assert.deepEqual(skipped.groupMessages().map(plain), [fromGroup(group, "text", "headline")]);
    await flush(outsider);
    assert.equal(outsider.groupMessages().length, 0);
  });
});

describe("@azure/web-pubsub: groups", () => {
  test("group(g).addConnection / removeConnection", async (t) => {
    const svc = service();
    const group = uid("added");
    const c = await startClient(t, { userId: uid("c"), query: { role: "none" } });
    assert.equal(await svc.groupExists(group), false);
    await svc.group(group).addConnection(c.connectionId);
    assert.equal(await svc.groupExists(group), true);
    assert.deepEqual((await emulatorConnection(c.connectionId)).groups, [group]);
    await svc.group(group).sendToAll("in", { contentType: "text/plain" });
    await c.waitForGroupMessage((m) => m.data === "in");

    await svc.group(group).removeConnection(c.connectionId);
    assert.equal(await svc.groupExists(group), false);
    assert.deepEqual((await emulatorConnection(c.connectionId)).groups, []);
    await svc.group(group).sendToAll("out", { contentType: "text/plain" });
    await flush(c);
    assert.deepEqual(c.groupMessages().map((m) => m.data), ["in"]);

    const missing = await svc.group(group).addConnection("no-such-connection").then(
      () => null,
      (e) => e,
    );
    assert.equal(missing?.name, "RestError", `adding an unknown connection fails, got ${missing}`);
    assert.equal(missing.statusCode, 404);
  });

  test("group(g).addUser / removeUser and removeUserFromAllGroups act on all the user's connections", async (t) => {
    const svc = service();
    const user = uid("u");
    const [g1, g2] = [uid("g1"), uid("g2")];
    const c1 = await startClient(t, { userId: user });
    const c2 = await startClient(t, { userId: user, protocol: WebPubSubJsonProtocol() });
    await svc.group(g1).addUser(user);
    await svc.group(g2).addUser(user);
    for (const c of [c1, c2]) {
      assert.deepEqual((await emulatorConnection(c.connectionId)).groups, [g1, g2].sort());
    }
    await svc.group(g1).sendToAll("to g1", { contentType: "text/plain" });
    for (const c of [c1, c2]) await c.waitForGroupMessage((m) => m.data === "to g1" && m.group === g1);

    await svc.group(g1).removeUser(user);
    assert.equal(await svc.groupExists(g1), false);
    for (const c of [c1, c2]) {
      assert.deepEqual((await emulatorConnection(c.connectionId)).groups, [g2]);
    }

    await svc.removeUserFromAllGroups(user);
    assert.equal(await svc.groupExists(g2), false);
    for (const c of [c1, c2]) {
      assert.deepEqual((await emulatorConnection(c.connectionId)).groups, []);
    }
    await svc.group(g2).sendToAll("to g2", { contentType: "text/plain" });
    for (const c of [c1, c2]) {
      await flush(c);
      assert.deepEqual(c.groupMessages().map((m) => m.data), ["to g1"]);
    }
  });

  test("addConnectionsToGroups / removeConnectionsFromGroups with a filter", async (t) => {
    const svc = service(lobby);
    const pick = uid("pick");
    const picked = await startClient(t, { hub: lobby, userId: pick });
    const left = await startClient(t, { hub: lobby, userId: uid("left") });
    const [g1, g2] = [uid("bulk1"), uid("bulk2")];
    await svc.addConnectionsToGroups([g1, g2], odata`userId eq ${pick}`);
    assert.deepEqual((await emulatorConnection(picked.connectionId, lobby)).groups, [g1, g2].sort());
    assert.deepEqual((await emulatorConnection(left.connectionId, lobby)).groups, []);
    await svc.removeConnectionsFromGroups([g1], odata`userId eq ${pick}`);
    assert.deepEqual((await emulatorConnection(picked.connectionId, lobby)).groups, [g2]);
  });

  test("group(g).listConnections lists the members", async (t) => {
    const svc = service();
    const group = uid("listed");
    const users = [uid("l1"), uid("l2")];
    const clients = [];
    for (const userId of users) clients.push(await startClient(t, { userId, query: { join: group } }));
    const listed = [];
    for await (const member of await svc.group(group).listConnections()) listed.push(member);
    listed.sort((a, b) => a.userId.localeCompare(b.userId));
    assert.deepEqual(
      listed,
      clients.map((c, i) => ({ connectionId: c.connectionId, userId: users[i] })).sort((a, b) => a.userId.localeCompare(b.userId)),
    );
  });
});

describe("@azure/web-pubsub: existence", () => {
  test("connectionExists / groupExists / userExists", async (t) => {
    const svc = service();
    const user = uid("exists");
    const group = uid("exists-group");
    assert.equal(await svc.userExists(user), false);
    const c = await startClient(t, { userId: user });
    assert.equal(await svc.connectionExists(c.connectionId), true);
    assert.equal(await svc.connectionExists(uid("nobody")), false);
    assert.equal(await svc.userExists(user), true);
    assert.equal(await svc.userExists(uid("nobody")), false);
    assert.equal(await svc.groupExists(group), false);
    await within("join", c.client.joinGroup(group));
    assert.equal(await svc.groupExists(group), true);
    await within("leave", c.client.leaveGroup(group));
    assert.equal(await svc.groupExists(group), false);
    await c.stop();
    await waitUntil("the user to be gone", async () => !(await svc.userExists(user)));
    assert.equal(await svc.connectionExists(c.connectionId), false);
  });
});

describe("@azure/web-pubsub: closing", () => {
  for (const { name, make } of PROTOCOLS) {
    test(`closeConnection with a reason, ${name}`, async (t) => {
      const svc = service();
      const c = await startClient(t, { userId: uid("closed"), protocol: make() });
      const keep = await startClient(t, { userId: uid("kept"), protocol: make() });
      const id = c.connectionId;
      await svc.closeConnection(id, { reason: "kicked by test" });
      const disconnected = await c.waitFor("disconnected");
      assert.equal(disconnected.value.connectionId, id);
      assert.equal(disconnected.value.message?.event, "disconnected");
      assert.equal(disconnected.value.message?.message, "kicked by test");
      await c.waitFor("stopped");
      const upstream = await waitForUpstream("disconnected", (e) => e.type === "disconnected" && e.connectionId === id);
      assert.equal(upstream.reason, "kicked by test");
      assert.equal(await svc.connectionExists(id), false);
      assert.equal(await svc.connectionExists(keep.connectionId), true);
      assert.equal(keep.all("disconnected").length, 0);
    });
  }

  test("closeUserConnections and group(g).closeAllConnections", async (t) => {
    const svc = service();
    const user = uid("closed-user");
    const group = uid("closed-group");
    const u1 = await startClient(t, { userId: user, protocol: WebPubSubJsonProtocol() });
    const u2 = await startClient(t, { userId: user, protocol: WebPubSubJsonProtocol() });
    const g = await startClient(t, { userId: uid("in-group"), protocol: WebPubSubJsonProtocol(), query: { join: group } });
    const bystander = await startClient(t, { userId: uid("bystander"), protocol: WebPubSubJsonProtocol() });
    await svc.closeUserConnections(user, { reason: "user closed" });
    for (const c of [u1, u2]) {
      const d = await c.waitFor("disconnected");
      assert.equal(d.value.message?.message, "user closed");
    }
    assert.equal(await svc.userExists(user), false);
    await svc.group(group).closeAllConnections({ reason: "group closed" });
    const d = await g.waitFor("disconnected");
    assert.equal(d.value.message?.message, "group closed");
    assert.equal(await svc.groupExists(group), false);
    assert.equal(await svc.connectionExists(bystander.connectionId), true);
  });

  test("closeAllConnections closes every connection of the hub", async (t) => {
    const svc = service(lobby);
    const clients = [];
    for (const { make } of PROTOCOLS) {
      clients.push(await startClient(t, { hub: lobby, userId: uid("everyone"), protocol: make() }));
    }
    const chat = await startClient(t, { userId: uid("other-hub") });
    await svc.closeAllConnections({ reason: "closing time" });
    for (const c of clients) {
      const d = await c.waitFor("disconnected");
      assert.equal(d.value.message?.message, "closing time");
      const upstream = await waitForUpstream("disconnected", (e) => e.type === "disconnected" && e.connectionId === c.connectionId);
      assert.equal(upstream.reason, "closing time");
      assert.equal(upstream.hub, lobby);
    }
    await waitUntil("the isolated hub to be empty", async () => ((await emulatorState()).hubs[lobby] ?? []).length === 0);
    assert.equal(await service().connectionExists(chat.connectionId), true, "another hub is untouched");
  });
});

describe("@azure/web-pubsub: permissions", () => {
  test("grantPermission / hasPermission / revokePermission change what a client may do", async (t) => {
    const svc = service();
    const [g, other, any] = [uid("perm"), uid("perm-other"), uid("perm-any")];
    const c = await startClient(t, { userId: uid("p"), protocol: WebPubSubJsonProtocol(), query: { role: "none" } });
    const id = c.connectionId;

    assert.equal(await svc.hasPermission(id, "joinLeaveGroup", { targetName: g }), false);
    await forbidden(c.client.joinGroup(g));

    await svc.grantPermission(id, "joinLeaveGroup", { targetName: g });
    assert.equal(await svc.hasPermission(id, "joinLeaveGroup", { targetName: g }), true);
    assert.equal(await svc.hasPermission(id, "joinLeaveGroup", { targetName: other }), false);
    await within("join the granted group", c.client.joinGroup(g));
    await forbidden(c.client.joinGroup(other));
    assert.deepEqual((await emulatorConnection(id)).groups, [g]);

    await svc.revokePermission(id, "joinLeaveGroup", { targetName: g });
    assert.equal(await svc.hasPermission(id, "joinLeaveGroup", { targetName: g }), false);
    await forbidden(c.client.leaveGroup(g));
    assert.deepEqual((await emulatorConnection(id)).groups, [g], "still a member: leaving was refused");

    await forbidden(c.client.sendToGroup(any, "x", "text"));
    await svc.grantPermission(id, "sendToGroup");
    assert.equal(await svc.hasPermission(id, "sendToGroup"), true);
    assert.equal(await svc.hasPermission(id, "sendToGroup", { targetName: any }), true);
    await within("send to any group", c.client.sendToGroup(any, "x", "text"));
    await svc.revokePermission(id, "sendToGroup");
    assert.equal(await svc.hasPermission(id, "sendToGroup", { targetName: any }), false);
    await forbidden(c.client.sendToGroup(any, "y", "text"));
  });
});

describe("@azure/web-pubsub: getClientAccessToken", () => {
  test("signs locally a URL the emulator accepts, with userId, roles and groups", async (t) => {
    const svc = service();
    const user = uid("token-user");
    const [g, other] = [uid("token-group"), uid("token-other")];
    const roles = [`webpubsub.sendToGroup.${g}`, `webpubsub.joinLeaveGroup.${g}`];
    const access = await svc.getClientAccessToken({ userId: user, roles, groups: [g], expirationTimeInMinutes: 5 });
    const endpoint = new URL(env.endpoint);
    assert.equal(access.baseUrl, `ws://${endpoint.host}/client/hubs/${env.hub}`);
    assert.equal(access.url, `${access.baseUrl}?access_token=${access.token}`);
    const { header, payload } = decodeJwt(access.token);
    assert.equal(header.alg, "HS256");
    assert.equal(payload.aud, `http://${endpoint.host}/client/hubs/${env.hub}`);
    assert.equal(payload.sub, user);
    assert.deepEqual(payload.role, roles);
    assert.deepEqual(payload["webpubsub.group"], [g]);
    assert.equal(payload.exp - payload.iat, 300);

    // role=none: the upstream grants nothing, so only the token's roles apply.
    const c = await startClient(t, { userId: user, roles, groups: [g], query: { role: "none" }, protocol: WebPubSubJsonProtocol() });
    assert.equal(c.connected.userId, user);
    const view = await emulatorConnection(c.connectionId);
    assert.deepEqual(view.groups, [g]);
    assert.deepEqual([...view.roles].sort(), [...roles].sort());
    const connect = (await upstreamLog()).find((e) => e.type === "connect" && e.connectionId === c.connectionId);
    assert.deepEqual(connect.claims.role, roles);

    await within("send to the token's group", c.client.sendToGroup(g, "via token", "text"));
    const echo = await c.waitForGroupMessage((m) => m.data === "via token");
    assert.deepEqual(plain(echo.value.message), { ...fromGroup(g, "text", "via token"), fromUserId: user });
    await forbidden(c.client.sendToGroup(other, "nope", "text"));
    await forbidden(c.client.joinGroup(other));
    assert.equal(view.protocol, JSON_SUBPROTOCOL);
  });
});
