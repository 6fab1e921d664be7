// @azure/web-pubsub-client 1.1.0 against the emulator, with an upstream
// built with the webpubsub crate (see tests/npm_clients.rs for what it does).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { SendMessageError, WebPubSubClient } from "@azure/web-pubsub-client";
import {
  CLIENT_OPTIONS,
  PROTOCOLS,
  RELIABLE_SUBPROTOCOL,
  emulatorConnection,
  flush,
  clientUrl,
  service,
  sleep,
  startClient,
  uid,
  upstreamLog,
  waitForUpstream,
  waitUntil,
  within,
} from "./helpers.mjs";

/** A message as received, minus undefined fields, binary data as base64. */
function plain(message) {
  const copy = {};
  for (const [key, value] of Object.entries(message)) {
    if (value === undefined) continue;
    copy[key] = value instanceof ArrayBuffer ? { base64: Buffer.from(value).toString("base64") } : value;
  }
  return copy;
}

/**
 * Checks a received message: `sequenceId` is a positive integer for the
 * reliable protocol and absent otherwise; the rest equals `expected`.
 */
function assertMessage(message, expected, subprotocol) {
  const got = plain(message);
  if (subprotocol === RELIABLE_SUBPROTOCOL) {
    assert.ok(
      Number.isInteger(got.sequenceId) && got.sequenceId > 0,
      `a reliable message carries a sequenceId: ${JSON.stringify(got)}`,
    );
  } else {
    assert.equal(got.sequenceId, undefined, "no sequenceId on the non-reliable protocol");
  }
  delete got.sequenceId;
  assert.deepEqual(got, expected);
}

/** Asserts `promise` rejects with a SendMessageError whose ack error is `name`. */
async function assertAckError(promise, name) {
  const error = await within(`an error ack '${name}'`, promise.then(
    (value) => {
      throw new Error(`expected a '${name}' error ack, got success ${JSON.stringify(value)}`);
    },
    (e) => e,
  ));
  assert.ok(error instanceof SendMessageError, `a SendMessageError, got ${error}`);
  assert.equal(error.name, "SendMessageError");
  assert.equal(typeof error.ackId, "number");
  assert.equal(error.errorDetail?.name, name, JSON.stringify(error.errorDetail));
  assert.equal(typeof error.errorDetail.message, "string");
  return error;
}

const bytes = (...values) => new Uint8Array(values).buffer;
const b64 = (...values) => Buffer.from(values).toString("base64");

for (const { name: protocolName, subprotocol, make } of PROTOCOLS) {
  describe(`@azure/web-pubsub-client, ${protocolName}`, () => {
    test("connects: connected event, upstream connect and connected, emulator state", async (t) => {
      const user = uid("alice");
      const alice = await startClient(t, { userId: user, protocol: make() });
      assert.equal(alice.connected.userId, user);
      assert.equal(typeof alice.connectionId, "string");
      assert.ok(alice.connectionId.length > 0);

      const connect = await waitForUpstream("connect", (e) => e.type === "connect" && e.connectionId === alice.connectionId);
      assert.equal(connect.event, "connect");
      assert.equal(connect.userId, user);
      assert.deepEqual(connect.subprotocols, [subprotocol]);
      assert.deepEqual(connect.claims.sub, [user]);
      const connected = await waitForUpstream("connected", (e) => e.type === "connected" && e.connectionId === alice.connectionId);
      assert.equal(connected.userId, user);
      assert.equal(connected.subprotocol, subprotocol);

      const view = await emulatorConnection(alice.connectionId);
      assert.ok(view, "the emulator lists the connection");
      assert.equal(view.userId, user);
      assert.equal(view.protocol, subprotocol);
      assert.deepEqual([...view.roles].sort(), ["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup"]);
      assert.equal(await service().connectionExists(alice.connectionId), true);
    });

    test("joinGroup / sendToGroup / leaveGroup: acks and group messages (json, text, binary, noEcho)", async (t) => {
      const group = uid("room");
      const aliceId = uid("alice");
      const alice = await startClient(t, { userId: aliceId, protocol: make() });
      const bob = await startClient(t, { userId: uid("bob"), protocol: make() });

      const joined = await within("alice joins", alice.client.joinGroup(group));
      assert.equal(typeof joined.ackId, "number");
      assert.equal(joined.isDuplicated, false);
      await within("bob joins", bob.client.joinGroup(group));
      assert.equal(await service().groupExists(group), true);
      assert.deepEqual((await emulatorConnection(bob.connectionId)).groups, [group]);

      const sent = await within("sendToGroup json", alice.client.sendToGroup(group, { n: 1, s: "x" }, "json"));
      assert.equal(typeof sent.ackId, "number");
      assert.notEqual(sent.ackId, joined.ackId);
      assert.equal(sent.isDuplicated, false);
      const expectedJson = {
        type: "message",
        kind: "groupData",
        from: "group",
        group,
        fromUserId: aliceId,
        dataType: "json",
        data: { n: 1, s: "x" },
      };
      for (const who of [bob, alice]) {
        const got = await who.waitForGroupMessage((m) => m.dataType === "json" && m.data?.n === 1);
        assertMessage(got.value.message, expectedJson, subprotocol);
      }

      await within("sendToGroup text noEcho", alice.client.sendToGroup(group, "no echo", "text", { noEcho: true }));
      const text = await bob.waitForGroupMessage((m) => m.data === "no echo");
      assertMessage(text.value.message, { ...expectedJson, dataType: "text", data: "no echo" }, subprotocol);

      await within("sendToGroup binary", alice.client.sendToGroup(group, bytes(1, 2, 3, 255), "binary", { noEcho: true }));
      const binary = await bob.waitForGroupMessage((m) => m.dataType === "binary");
      assertMessage(binary.value.message, { ...expectedJson, dataType: "binary", data: { base64: b64(1, 2, 3, 255) } }, subprotocol);

      await flush(alice);
      assert.deepEqual(
        alice.groupMessages((m) => m.dataType !== "json").map(plain),
        [],
        "noEcho messages do not come back to the sender",
      );

      const left = await within("bob leaves", bob.client.leaveGroup(group));
      assert.equal(left.isDuplicated, false);
      assert.deepEqual((await emulatorConnection(bob.connectionId)).groups, []);
      await within("sendToGroup after leave", alice.client.sendToGroup(group, "after leave", "text"));
      await alice.waitForGroupMessage((m) => m.data === "after leave");
      await flush(bob);
      assert.equal(bob.groupMessages((m) => m.data === "after leave").length, 0, "bob left the group");
    });

    test("sendEvent 'echo': the upstream's reply arrives before the ack (text, json, binary)", async (t) => {
      const alice = await startClient(t, { userId: uid("alice"), protocol: make() });
      const cases = [
        { dataType: "text", content: "hi there", expected: "hi there" },
        { dataType: "json", content: { a: [1, 2], b: null }, expected: { a: [1, 2], b: null } },
        { dataType: "binary", content: bytes(0, 1, 254), expected: { base64: b64(0, 1, 254) } },
      ];
      for (const { dataType, content, expected } of cases) {
        const before = alice.mark();
        const result = await within(`sendEvent echo ${dataType}`, alice.client.sendEvent("echo", content, dataType));
        const ackedAt = alice.mark();
        assert.equal(typeof result.ackId, "number");
        assert.equal(result.isDuplicated, false);
        const replies = alice.all("server-message", () => true).filter((e) => e.at > before);
        assert.equal(replies.length, 1, `one reply to the ${dataType} echo arrived before its ack`);
        assert.ok(replies[0].at < ackedAt);
        assertMessage(
          replies[0].value.message,
          { type: "message", kind: "serverData", from: "server", dataType, data: expected },
          subprotocol,
        );
      }
      // Without an ackId (fireAndForget) the reply still comes.
      const ff = await within("fireAndForget sendEvent", alice.client.sendEvent("echo", "no ack", "text", { fireAndForget: true }));
      assert.deepEqual(ff, { isDuplicated: false });
      const reply = await alice.waitForServerMessage((m) => m.data === "no ack");
      assertMessage(reply.value.message, { type: "message", kind: "serverData", from: "server", dataType: "text", data: "no ack" }, subprotocol);
      const echoes = (await upstreamLog()).filter((e) => e.type === "user" && e.connectionId === alice.connectionId);
      assert.deepEqual(
        echoes.map((e) => [e.event, e.dataType, e.data]),
        [
          ["echo", "text", "hi there"],
          ["echo", "json", { a: [1, 2], b: null }],
          ["echo", "binary", b64(0, 1, 254)],
          ["echo", "text", "no ack"],
        ],
      );
    });

    test("sendEvent to events the upstream answers with text, JSON, nothing, or an error", async (t) => {
      const user = uid("carol");
      const carol = await startClient(t, { userId: user, protocol: make() });

      await within("sendEvent hello", carol.client.sendEvent("hello", "x", "text"));
      const hello = carol.serverMessages((m) => m.data === "got hello");
      assert.equal(hello.length, 1, "the text reply came before the ack");
      assertMessage(hello[0], { type: "message", kind: "serverData", from: "server", dataType: "text", data: "got hello" }, subprotocol);

      await within("sendEvent whoami", carol.client.sendEvent("whoami", { q: 1 }, "json"));
      const whoami = carol.serverMessages((m) => m.dataType === "json");
      assert.equal(whoami.length, 1);
      assertMessage(
        whoami[0],
        {
          type: "message",
          kind: "serverData",
          from: "server",
          dataType: "json",
          data: { userId: user, connectionId: carol.connectionId, event: "whoami" },
        },
        subprotocol,
      );

      const before = carol.mark();
      const silent = await within("sendEvent silent", carol.client.sendEvent("silent", "quiet", "text"));
      assert.equal(silent.isDuplicated, false);
      await flush(carol);
      assert.deepEqual(
        carol.all("server-message").filter((e) => e.at > before && !String(e.value.message.data).startsWith("flush-")),
        [],
        "an empty upstream answer sends nothing back",
      );

      await assertAckError(carol.client.sendEvent("fail", "boom", "text"), "InternalServerError");
      const seen = (await upstreamLog()).filter((e) => e.type === "user" && e.connectionId === carol.connectionId);
      assert.deepEqual(
        seen.map((e) => [e.event, e.dataType, e.data]),
        [
          ["hello", "text", "x"],
          ["whoami", "json", { q: 1 }],
          ["silent", "text", "quiet"],
          ["fail", "text", "boom"],
        ],
      );
      assert.equal(await service().connectionExists(carol.connectionId), true, "a failed event keeps the client connected");
    });

    test("no roles: joinGroup and sendToGroup get Forbidden acks, events still work", async (t) => {
      const group = uid("locked");
      const dave = await startClient(t, { userId: uid("dave"), protocol: make(), query: { role: "none" } });
      assert.deepEqual((await emulatorConnection(dave.connectionId)).roles, []);

      const join = await assertAckError(dave.client.joinGroup(group), "Forbidden");
      const send = await assertAckError(dave.client.sendToGroup(group, "nope", "text"), "Forbidden");
      assert.notEqual(join.ackId, send.ackId);
      assert.deepEqual((await emulatorConnection(dave.connectionId)).groups, []);
      assert.equal(await service().groupExists(group), false);

      await within("sendEvent echo without roles", dave.client.sendEvent("echo", "still here", "text"));
      assert.equal(dave.serverMessages((m) => m.data === "still here").length, 1);

      // With retries the client re-sends a Forbidden request under new
      // ackIds; each attempt is answered Forbidden again (not Duplicate).
      const retrying = await startClient(t, {
        userId: uid("retry"),
        protocol: make(),
        query: { role: "none" },
        clientOptions: { messageRetryOptions: { maxRetries: 2, retryDelayInMs: 10, mode: "Fixed" } },
      });
      const first = await within("a first ack", retrying.client.sendEvent("silent", "", "text"));
      const retried = await assertAckError(retrying.client.joinGroup(group), "Forbidden");
      assert.equal(retried.ackId, first.ackId + 3, "three attempts, three ackIds");
    });

    test("a repeated ackId is acked as a duplicate", async (t) => {
      const erin = await startClient(t, { userId: uid("erin"), protocol: make() });
      const first = await within("join with ackId 42", erin.client.joinGroup(uid("g"), { ackId: 42 }));
      assert.deepEqual(first, { ackId: 42, isDuplicated: false });
      const again = await within("join again with ackId 42", erin.client.joinGroup(uid("g"), { ackId: 42 }));
      assert.deepEqual(again, { ackId: 42, isDuplicated: true });
    });

    test("keep-alive: the client's pings are answered, an idle client stays connected", async (t) => {
      // The client sends {"type":"ping"} every 100 ms and closes the socket
      // when nothing at all arrived for 600 ms; only pongs arrive here.
      const idle = await startClient(t, {
        userId: uid("idle"),
        protocol: make(),
        clientOptions: { keepAliveIntervalInMs: 100, keepAliveTimeoutInMs: 600 },
      });
      // A reliable client would recover a closed socket silently, so also
      // check (client internals) that the WebSocket is still the first one.
      const socket = idle.client._wsClient;
      assert.ok(socket, "the client has a WebSocket");
      await sleep(1500);
      assert.equal(idle.client._wsClient, socket, "the client never replaced its WebSocket");
      assert.deepEqual(
        idle.events.map((e) => e.kind),
        ["connected"],
        "no disconnect while idle: every ping got a pong",
      );
      assert.equal(await service().connectionExists(idle.connectionId), true);
    });

    test("stop(): the client stops and the upstream gets 'disconnected' at once", async (t) => {
      const frank = await startClient(t, { userId: uid("frank"), protocol: make() });
      const id = frank.connectionId;
      const started = Date.now();
      frank.client.stop();
      await frank.waitFor("stopped");
      const disconnected = await waitForUpstream("disconnected", (e) => e.type === "disconnected" && e.connectionId === id);
      assert.ok(Date.now() - started < 5000, "disconnected within 5 s of stop()");
      assert.equal(disconnected.userId, frank.connected.userId);
      assert.ok(!disconnected.reason, `no reason for a normal client close, got ${JSON.stringify(disconnected.reason)}`);
      await waitUntil("the connection to be gone", async () => !(await service().connectionExists(id)));
      assert.equal(await emulatorConnection(id), undefined);
      const entries = (await upstreamLog()).filter((e) => e.connectionId === id).map((e) => e.type);
      assert.deepEqual(entries, ["connect", "connected", "disconnected"]);
    });

    test(
      "a short-lived connection: the upstream has handled 'connected' before 'disconnected' arrives",
      async (t) => {
      // The upstream's connected handler takes 300 ms for users named slow-*.
      const user = uid("slow");
      const quick = await startClient(t, { userId: user, protocol: make() });
      const id = quick.connectionId;
      quick.client.stop();
      await quick.waitFor("stopped");
      await waitForUpstream("disconnected", (e) => e.type === "disconnected" && e.connectionId === id);
      await waitForUpstream("connected", (e) => e.type === "connected" && e.connectionId === id);
      const entries = (await upstreamLog()).filter((e) => e.connectionId === id).map((e) => e.type);
      assert.deepEqual(entries, ["connect", "connected", "disconnected"]);
      },
    );
  });
}

describe("@azure/web-pubsub-client, connect handling", () => {
  test("groups from the upstream's connect response are joined", async (t) => {
    const group = uid("welcome");
    const gina = await startClient(t, { userId: uid("gina"), query: { join: group } });
    assert.deepEqual((await emulatorConnection(gina.connectionId)).groups, [group]);
    await service().group(group).sendToAll("hello group", { contentType: "text/plain" });
    const got = await gina.waitForGroupMessage((m) => m.data === "hello group");
    assert.equal(got.value.message.group, group);
  });

  test("a connect refused by the upstream makes start() reject and nothing stays connected", async () => {
    const user = uid("mallory");
    const url = await clientUrl({ userId: user, query: { reject: "1" } });
    const client = new WebPubSubClient(url, CLIENT_OPTIONS);
    await assert.rejects(within("start() of a refused client", client.start()));
    await waitForUpstream("the refused connect", (e) => e.type === "connect" && e.userId === user);
    assert.equal(await service().userExists(user), false);
    const later = (await upstreamLog()).filter((e) => e.userId === user).map((e) => e.type);
    assert.deepEqual(later, ["connect"], "no connected/disconnected for a refused connect");
  });
});

describe("@azure/web-pubsub-client, reconnection", () => {
  test("reliable: a broken transport is recovered, messages sent meanwhile arrive once, no new upstream connect", async (t) => {
    const svc = service();
    const group = uid("kept");
    const r = await startClient(t, { userId: uid("rel"), query: { join: group } });
    const id = r.connectionId;
    await svc.sendToConnection(id, "before", { contentType: "text/plain" });
    await r.waitForServerMessage((m) => m.data === "before");

    // Client internals: destroy the TCP socket without a close frame (ws
    // terminate()), as a network failure would; the client sees 1006 and
    // reconnects with awps_connection_id and awps_reconnection_token.
    const socket = r.client._wsClient;
    socket._socket.terminate();
    await svc.sendToConnection(id, "during", { contentType: "text/plain" });
    await svc.group(group).sendToAll("group during", { contentType: "text/plain" });

    await r.waitForServerMessage((m) => m.data === "during");
    await r.waitForGroupMessage((m) => m.data === "group during");
    assert.notEqual(r.client._wsClient, socket, "the client recovered on a new WebSocket");
    assert.equal(r.serverMessages((m) => m.data === "before").length, 1, "nothing surfaces twice");
    assert.deepEqual(r.events.filter((e) => e.kind !== "server-message" && e.kind !== "group-message").map((e) => e.kind), ["connected"]);
    const sequence = [...r.serverMessages(), ...r.groupMessages()].map((m) => m.sequenceId).sort((a, b) => a - b);
    assert.deepEqual(sequence, [1, 2, 3], "sequence ids continue across the recovery");

    assert.equal(r.connectionId, id);
    assert.deepEqual((await emulatorConnection(id)).groups, [group], "the logical connection kept its groups");
    await within("sendEvent after recovery", r.client.sendEvent("echo", "after", "text"));
    assert.equal(r.serverMessages((m) => m.data === "after").length, 1);
    const entries = (await upstreamLog()).filter((e) => e.connectionId === id).map((e) => e.type);
    assert.deepEqual(entries, ["connect", "connected", "user"], "a recovery is not a new connection upstream");
  });

  for (const { name: protocolName, make } of PROTOCOLS) {
    test(`autoReconnect after a REST close: a new connection re-joins its groups, ${protocolName}`, async (t) => {
      const svc = service();
      const group = uid("rejoin");
      const user = uid("phoenix");
      const c = await startClient(t, { userId: user, protocol: make(), clientOptions: { autoReconnect: true } });
      await within("join", c.client.joinGroup(group));
      const first = c.connectionId;
      await svc.closeConnection(first, { reason: "come back" });
      const disconnected = await c.waitFor("disconnected");
      assert.equal(disconnected.value.connectionId, first);
      assert.equal(disconnected.value.message?.message, "come back");

      const again = await c.waitFor("connected", (v) => v.connectionId !== first);
      assert.equal(again.value.userId, user);
      assert.ok(again.at > disconnected.at);
      const second = again.value.connectionId;
      assert.deepEqual((await emulatorConnection(second)).groups, [group], "re-joined before 'connected'");
      assert.equal(await svc.connectionExists(first), false);
      await svc.group(group).sendToAll("welcome back", { contentType: "text/plain" });
      await c.waitForGroupMessage((m) => m.data === "welcome back");
      assert.equal(c.all("stopped").length, 0);
      const reasons = (await upstreamLog()).filter((e) => e.type === "disconnected" && e.connectionId === first);
      assert.deepEqual(reasons.map((e) => e.reason), ["come back"]);
      await waitForUpstream("the new connection", (e) => e.type === "connected" && e.connectionId === second);
    });
  }
});
