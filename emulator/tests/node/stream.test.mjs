// Group streams of @azure/web-pubsub-client 1.1.0 (openGroupStream on the
// sender, onGroupStream on listeners) against the emulator, with the
// upstream of tests/npm_clients.rs (it grants webpubsub.sendToGroup and
// webpubsub.joinLeaveGroup unless the query has role=none).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { PROTOCOLS, emulatorState, startClient, uid, waitUntil, within } from "./helpers.mjs";

/**
 * Listens for group streams on `probe`'s client: `streams` gets, per stream
 * seen, `{ streamId, groupName, items, done, error }`; `done` turns true
 * when the stream completed (with `error` when it failed).
 */
function listen(probe, options) {
  const streams = [];
  probe.client.onGroupStream(async (stream) => {
    const seen = { streamId: stream.streamId, groupName: stream.groupName, items: [], done: false };
    streams.push(seen);
    try {
      for await (const item of stream) seen.items.push(item);
    } catch (error) {
      seen.error = error;
    }
    seen.done = true;
  }, options);
  return {
    streams,
    /** Waits until stream `id` completed; returns it. */
    ended: (id, ms) =>
      waitUntil(`stream ${id} to end`, () => streams.find((s) => s.streamId === id && s.done), ms),
  };
}

/** A listener that joined `group`, and a sender (not in the group). */
async function pair(t, group, { protocol, senderQuery = {} } = {}) {
  const listener = await startClient(t, { userId: uid("listener"), protocol });
  await within("joinGroup", listener.client.joinGroup(group));
  const sender = await startClient(t, { userId: uid("streamer"), protocol, query: senderQuery });
  return { listener, sender };
}

describe("group streams", () => {
  for (const { name, make } of PROTOCOLS) {
    test(`chunks arrive in order with their ids, then the end (${name})`, async (t) => {
      const group = uid("stream-room");
      const { listener, sender } = await pair(t, group, { protocol: make() });
      const inbox = listen(listener);
      const writer = await within("openGroupStream", sender.client.openGroupStream(group));
      const errors = [];
      writer.onError((e) => errors.push(e));
      await writer.write("first", "text");
      await writer.write({ n: 2 }, "json");
      await writer.write(new Uint8Array([0, 255]).buffer, "binary");
      await writer.end();
      const stream = await inbox.ended(writer.streamId);
      assert.equal(stream.groupName, group);
      assert.equal(stream.error, undefined);
      assert.deepEqual(
        stream.items.map((m) => [m.stream.streamSequenceId, m.dataType, m.fromUserId, m.groupName]),
        [
          [1, "text", sender.connected.userId, group],
          [2, "json", sender.connected.userId, group],
          [3, "binary", sender.connected.userId, group],
        ],
      );
      assert.equal(stream.items[0].data, "first");
      assert.deepEqual(stream.items[1].data, { n: 2 });
      assert.deepEqual([...new Uint8Array(stream.items[2].data)], [0, 255]);
      assert.ok(stream.items.every((m) => m.stream.streamId === writer.streamId));
      assert.equal(inbox.streams.length, 1, "one stream, seen once");
      // The emulator closes the stream after the end: no error for the writer.
      await waitUntil("the stream to leave the live view", async () =>
        !(await emulatorState()).streams.open.some((s) => s.streamId === writer.streamId),
      );
      assert.deepEqual(errors, []);
      // The id is free again once the emulator closed it.
      const again = await within(
        "openGroupStream with the same id",
        sender.client.openGroupStream(group, { streamId: writer.streamId }),
      );
      await again.end();
    });
  }

  test("a client without permission to send cannot open a stream", async (t) => {
    const group = uid("stream-closed-room");
    const { sender } = await pair(t, group, { senderQuery: { role: "none" } });
    await assert.rejects(
      within("openGroupStream", sender.client.openGroupStream(group)),
      (error) => {
        assert.equal(error.name, "Forbidden");
        assert.match(error.message, /No permission to send/);
        return true;
      },
    );
  });

  test("the sender disconnecting mid-way ends the stream for listeners with an error", async (t) => {
    const group = uid("stream-drop-room");
    const { listener, sender } = await pair(t, group);
    const inbox = listen(listener);
    const writer = await within("openGroupStream", sender.client.openGroupStream(group));
    await writer.write("before", "text");
    await waitUntil("the first chunk", () => inbox.streams[0]?.items.length === 1);
    await sender.stop();
    const stream = await inbox.ended(writer.streamId);
    assert.deepEqual(
      stream.items.map((m) => m.data),
      ["before"],
    );
    assert.equal(stream.error?.name, "SenderDisconnected");
  });

  test("a stream ended with an error shows the error to listeners", async (t) => {
    const group = uid("stream-abort-room");
    const { listener, sender } = await pair(t, group);
    const inbox = listen(listener);
    const writer = await within("openGroupStream", sender.client.openGroupStream(group));
    await writer.write("partial", "text");
    await writer.abort({ message: "the model gave up", userErrorCode: "E42" });
    const stream = await inbox.ended(writer.streamId);
    assert.deepEqual(
      stream.items.map((m) => m.data),
      ["partial"],
    );
    assert.deepEqual(stream.error, {
      name: "UserError",
      message: "the model gave up",
      userErrorCode: "E42",
    });
  });

  test("an idle stream is closed: the writer's onError and listeners get IdleTimeout", async (t) => {
    const group = uid("stream-idle-room");
    const { listener, sender } = await pair(t, group);
    const inbox = listen(listener);
    const writer = await within(
      "openGroupStream",
      sender.client.openGroupStream(group, { idleTimeoutInMs: 1000 }),
    );
    const errors = [];
    writer.onError((e) => errors.push(e));
    await writer.write("only", "text");
    const stream = await inbox.ended(writer.streamId);
    assert.equal(stream.error?.name, "IdleTimeout");
    await waitUntil("the writer's onError", () => errors.length > 0);
    assert.equal(errors[0].name, "IdleTimeout");
    await assert.rejects(writer.write("late", "text"), /is completed/);
  });
});
