// `WebPubSubClient.invokeEvent` of @azure/web-pubsub-client 1.1.0 against
// the emulator: each invocation is the user event it names, raised as
// `sendEvent` raises it, and the upstream's answer (or failure) comes back
// as the promise's result (or InvocationError). Run by tests/npm_clients.rs,
// whose upstream answers `echo`, `whoami`, `fail` (400), `crash` (500) and
// `slow` (3 s, then logs `done`); hub `down` has an unreachable handler.

import { test, describe } from "node:test";
import assert from "node:assert/strict";

import { InvocationError } from "@azure/web-pubsub-client";
import {
  PROTOCOLS,
  emulatorState,
  sleep,
  startClient,
  uid,
  upstreamLog,
  waitForUpstream,
  waitUntil,
  within,
} from "./helpers.mjs";

/** The hub whose event handler points at a closed port. */
const DOWN_HUB = process.env.WPS_HUB_DOWN;

/** Asserts `promise` rejects with an InvocationError carrying `name`; returns it. */
async function rejectsWith(promise, name) {
  let error;
  await assert.rejects(within(`an InvocationError ${name}`, promise), (err) => {
    error = err;
    return true;
  });
  assert.ok(error instanceof InvocationError, `an InvocationError, got ${error}`);
  assert.equal(error.name, "InvocationError");
  assert.equal(error.errorDetail?.name, name, JSON.stringify(error.errorDetail));
  assert.equal(error.message, error.errorDetail.message);
  return error;
}

describe("invokeEvent", () => {
  for (const protocol of PROTOCOLS) {
    test(`the upstream's reply is the result: text and json (${protocol.name})`, async (t) => {
      const c = await startClient(t, { userId: uid("invoker"), protocol: protocol.make() });
      const text = await within("invokeEvent echo text", c.client.invokeEvent("echo", "ping", "text"));
      assert.equal(text.dataType, "text");
      assert.equal(text.data, "ping");
      assert.equal(typeof text.invocationId, "string");

      const json = await within("invokeEvent echo json", c.client.invokeEvent("echo", { a: [1, true] }, "json"));
      assert.equal(json.dataType, "json");
      assert.deepEqual(json.data, { a: [1, true] });

      const who = await within("invokeEvent whoami", c.client.invokeEvent("whoami", { q: 1 }, "json"));
      assert.deepEqual(who.data, { userId: c.connected.userId, connectionId: c.connectionId, event: "whoami" });

      const greeting = await within("invokeEvent hello", c.client.invokeEvent("hello", "x", "text"));
      assert.deepEqual([greeting.dataType, greeting.data], ["text", "got hello"]);

      // The upstream saw user events, typed as sendEvent types them.
      const seen = await waitForUpstream(
        "the json invoke",
        (e) => e.type === "user" && e.connectionId === c.connectionId && e.event === "echo" && e.dataType === "json",
      );
      assert.deepEqual(seen.data, { a: [1, true] });
    });
  }

  test("binary data round-trips", async (t) => {
    const c = await startClient(t, { userId: uid("invoker") });
    const bytes = new Uint8Array([0, 1, 255]).buffer;
    const result = await within("invokeEvent echo binary", c.client.invokeEvent("echo", bytes, "binary"));
    assert.equal(result.dataType, "binary");
    assert.deepEqual([...new Uint8Array(result.data)], [0, 1, 255]);
  });

  test("an upstream 400 rejects with BadRequest and the upstream's message", async (t) => {
    const c = await startClient(t, { userId: uid("invoker") });
    const error = await rejectsWith(c.client.invokeEvent("fail", "boom", "text"), "BadRequest");
    assert.match(error.message, /the upstream refuses `fail`/);
    // The connection is fine afterwards.
    const after = await within("invokeEvent after a failure", c.client.invokeEvent("echo", "still", "text"));
    assert.equal(after.data, "still");
  });

  test("an upstream 500 rejects with InternalServerError", async (t) => {
    const c = await startClient(t, { userId: uid("invoker") });
    const error = await rejectsWith(c.client.invokeEvent("crash", "boom", "text"), "InternalServerError");
    assert.doesNotMatch(error.message, /crashed/, "a 5xx body is not forwarded");
  });

  test("an unreachable upstream rejects with InternalServerError", async (t) => {
    assert.ok(DOWN_HUB, "WPS_HUB_DOWN is set by tests/npm_clients.rs");
    const c = await startClient(t, { userId: uid("invoker"), hub: DOWN_HUB });
    await rejectsWith(c.client.invokeEvent("echo", "anyone?", "text"), "InternalServerError");
  });

  test("several invocations are pending at once and answered each", async (t) => {
    const c = await startClient(t, { userId: uid("invoker") });
    const results = await within(
      "three concurrent invocations",
      Promise.all(["a", "b", "c"].map((s) => c.client.invokeEvent("echo", s, "text"))),
    );
    assert.deepEqual(
      results.map((r) => r.data),
      ["a", "b", "c"],
    );
    assert.equal(new Set(results.map((r) => r.invocationId)).size, 3);
  });

  test("abortSignal: the client sends cancelInvocation, the upstream call is dropped, nothing answers", async (t) => {
    const c = await startClient(t, { userId: uid("invoker") });
    const controller = new AbortController();
    const started = Date.now();
    const pending = c.client.invokeEvent("slow", "x", "text", { abortSignal: controller.signal });
    await waitForUpstream(
      "the slow invoke",
      (e) => e.type === "user" && e.event === "slow" && e.connectionId === c.connectionId,
    );
    // While it is pending, the connection serves other invocations.
    const echo = await within("invokeEvent while one is pending", c.client.invokeEvent("echo", "meanwhile", "text"));
    assert.equal(echo.data, "meanwhile");

    controller.abort();
    let error;
    await assert.rejects(within("the aborted invocation", pending), (err) => {
      error = err;
      return true;
    });
    assert.ok(error instanceof InvocationError, `an InvocationError, got ${error}`);
    assert.equal(error.errorDetail, undefined, "rejected by the client, not by a service answer");

    // The emulator got the cancelInvocation (its live view says so)…
    const cancelled = await waitUntil("the live view to show the cancelled invocation", async () =>
      (await emulatorState()).invocations.find((i) => i.connectionId === c.connectionId && i.event === "slow"),
    );
    assert.equal(cancelled.outcome, "cancelled");
    // …and dropped the upstream call: the handler never got to finish.
    await sleep(Math.max(0, started + 3500 - Date.now()));
    const done = (await upstreamLog()).filter((e) => e.type === "done" && e.connectionId === c.connectionId);
    assert.deepEqual(done, [], "the slow handler was not allowed to finish");
    // And the client is still connected and usable.
    const after = await within("invokeEvent after the abort", c.client.invokeEvent("echo", "after", "text"));
    assert.equal(after.data, "after");
  });
});
