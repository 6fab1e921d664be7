// MQTT clients (MQTT.js, the `mqtt` package) against the emulator's MQTT
// endpoint, ws://…/clients/mqtt/hubs/{hub}, with MQTT 3.1.1
// (protocolVersion 4) and 5.0 (protocolVersion 5). Run by
// tests/npm_clients.rs, whose top comment says what the upstream answers:
// here, the CONNECT user name `refuse-…` picks a refusal, and accepted
// clients get CONNACK user properties.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import mqtt from "mqtt";
import {
  env,
  service,
  startClient,
  uid,
  waitForUpstream,
  within,
  WAIT_MS,
} from "./helpers.mjs";
import { WebPubSubJsonProtocol } from "@azure/web-pubsub-client";

const VERSIONS = [
  { name: "MQTT 3.1.1", version: 4 },
  { name: "MQTT 5.0", version: 5 },
];

const EVENTS_TOPIC = "$webpubsub/server/events";
const SERVER_MESSAGES_TOPIC = "$webpubsub/server/messages";

/** An MQTT client id unique to this run: the service allows 0-9 a-z A-Z only. */
function clientId(prefix) {
  return `${prefix}${randomUUID().replaceAll("-", "").slice(0, 12)}`;
}

/**
 * An MQTT client URL from the service SDK's getClientAccessToken with
 * clientProtocol "mqtt" (signed locally with the connection string's key),
 * with `query` appended.
 */
async function mqttUrl({ hub = env.hub, query = {}, ...tokenOptions } = {}) {
  const { url } = await service(hub).getClientAccessToken({
    clientProtocol: "mqtt",
    ...tokenOptions,
  });
  assert.match(url, /^ws:\/\/[^/]+\/clients\/mqtt\/hubs\/[^/?]+\?access_token=/);
  const extra = new URLSearchParams(query).toString();
  return extra ? `${url}&${extra}` : url;
}

/**
 * Connects an MQTT.js client and waits for its CONNACK. Resolves with
 * `{ client, connack, packets, messages }` when accepted, or with
 * `{ refused: code, connack }` when the CONNACK refuses (code: 3.1.1
 * `returnCode` / 5.0 `reasonCode`). `packets` records every packet the
 * client received, `messages` every PUBLISH as `{ topic, payload, packet }`.
 * The client is ended after `t`.
 */
async function connectMqtt(
  t,
  { version, id = clientId("c"), username, password, properties, will, url, urlOptions = {} },
) {
  const packets = [];
  const messages = [];
  const client = mqtt.connect(url ?? (await mqttUrl(urlOptions)), {
    protocolVersion: version,
    clientId: id,
    username,
    password,
    properties,
    will,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: 3000,
    keepalive: 30,
  });
  const errors = [];
  client.on("packetreceive", (packet) => packets.push(packet));
  client.on("message", (topic, payload, packet) => messages.push({ topic, payload, packet }));
  client.on("error", (error) => errors.push(error));
  t.after(() => client.end(true));
  const outcome = await within(
    `the CONNACK of ${id}`,
    new Promise((resolve) => {
      client.once("connect", (connack) => resolve({ connack }));
      client.once("error", () => resolve({ refused: true }));
      // A socket error may be reported just after the close.
      client.once("close", () => setTimeout(() => resolve({ closed: true }), 50));
    }),
  );
  const connack = packets.find((p) => p.cmd === "connack");
  if (outcome.connack) return { client, id, connack: outcome.connack, packets, messages };
  assert.ok(
    connack,
    `${id}: the connection closed without a CONNACK (${errors.map((e) => e.message).join("; ") || "no error"})`,
  );
  const code = version === 5 ? connack.reasonCode : connack.returnCode;
  return { refused: code, connack, errors, id };
}

/** Waits until `messages` has one that matches; returns it. */
async function waitForMessage(what, messages, match, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = messages.find(match);
    if (found) return found;
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${ms} ms waiting for ${what}; got: ${JSON.stringify(
          messages.map((m) => ({ topic: m.topic, payload: m.payload.toString() })),
        )}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** MQTT.js's user properties (an object without prototype) as a plain object. */
function userProperties(properties) {
  return properties?.userProperties ? { ...properties.userProperties } : undefined;
}

/** Text of a payload the JSON client got (string, JSON, or binary bytes). */
function asText(data) {
  if (typeof data === "string") return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString();
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString();
  return JSON.stringify(data);
}

test("getClientAccessToken({ clientProtocol: 'mqtt' }) and :generateToken?clientType=MQTT both give URLs that connect", async (t) => {
  // The SDK's local signing: audience …/clients/mqtt/hubs/{hub}.
  const signed = await connectMqtt(t, { version: 5 });
  assert.equal(signed.connack.reasonCode ?? 0, 0);

  // The REST call, through the SDK's own pipeline (its bearer token).
  const client = service();
  const { token } = await client["client"].webPubSub.generateClientToken(env.hub, {
    clientType: "MQTT",
    roles: ["webpubsub.joinLeaveGroup"],
  });
  assert.ok(token, "a token");
  const base = env.endpoint.replace(/^http/, "ws");
  const url = `${base}/clients/mqtt/hubs/${env.hub}?access_token=${token}`;
  const generated = await connectMqtt(t, { version: 4, url });
  assert.equal(generated.connack.returnCode, 0);
});

test("a bad token is refused before any CONNACK can accept", async (t) => {
  const url = (await mqttUrl()).replace(/access_token=[^&]+/, "access_token=not-a-token");
  const client = mqtt.connect(url, {
    protocolVersion: 5,
    clientId: clientId("bad"),
    reconnectPeriod: 0,
    connectTimeout: 3000,
  });
  t.after(() => client.end(true));
  const outcome = await within(
    "the bad token's outcome",
    new Promise((resolve) => {
      client.once("connect", () => resolve("accepted"));
      client.once("error", () => resolve("refused"));
      client.once("close", () => resolve("refused"));
    }),
  );
  assert.equal(outcome, "refused");
});

for (const { name, version } of VERSIONS) {
  describe(name, () => {
    test("connect is accepted; the upstream sees the CONNECT and then connected", async (t) => {
      const properties = version === 5 ? { userProperties: { device: "probe", site: "lab" } } : undefined;
      const { connack, id } = await connectMqtt(t, {
        version,
        username: "sensor",
        password: Buffer.from([0, 1, 2, 255]),
        properties,
      });
      assert.equal(version === 5 ? connack.reasonCode : connack.returnCode, 0);

      const connect = await waitForUpstream(`connect of ${id}`, (e) => e.type === "connect" && e.connectionId === id);
      assert.equal(connect.mqtt.protocolVersion, version);
      assert.equal(connect.mqtt.username, "sensor");
      assert.equal(connect.mqtt.password, Buffer.from([0, 1, 2, 255]).toString("base64"));
      assert.deepEqual(connect.subprotocols, ["mqtt"]);
      await waitForUpstream(`connected of ${id}`, (e) => e.type === "connected" && e.connectionId === id);

      if (version === 5) {
        // CONNECT user properties reach the upstream…
        assert.deepEqual(
          [...connect.mqtt.userProperties].sort((a, b) => a.name.localeCompare(b.name)),
          [
            { name: "device", value: "probe" },
            { name: "site", value: "lab" },
          ],
        );
        // …and the upstream's CONNACK user properties reach the client.
        assert.deepEqual(userProperties(connack.properties), {
          upstream: "webpubsub",
          "echo-device": "probe",
          "echo-site": "lab",
        });
      } else {
        // 3.1.1 has no user properties: `null`, as the service writes it
        // (mqtt.md §4.1) and as the handler's typed request writes it back.
        assert.equal(connect.mqtt.userProperties, null);
      }
    });

    // [user name, the code the client must get]
    const refusals =
      version === 4
        ? [
            ["refuse-1", 1],
            ["refuse-2", 2],
            ["refuse-3", 3],
            ["refuse-4", 4],
            ["refuse-5", 5],
            ["refuse-unauthorized", 5],
            ["refuse-user-error", 4],
            ["refuse-server-error", 3],
          ]
        : [
            ["refuse-128", 128],
            ["refuse-131", 131],
            ["refuse-133", 133],
            ["refuse-134", 134],
            ["refuse-135", 135],
            ["refuse-136", 136],
            ["refuse-137", 137],
            ["refuse-138", 138],
            ["refuse-140", 140],
            ["refuse-151", 151],
            ["refuse-156", 156],
            ["refuse-159", 159],
            ["refuse-unauthorized", 135],
            ["refuse-user-error", 134],
            ["refuse-server-error", 128],
            // A 3.1.1 code is not an MQTT 5 reason code: "unspecified error".
            ["refuse-5", 128],
          ];
    for (const [username, expected] of refusals) {
      test(`the upstream refusing with ${username} gives the client code ${expected}`, async (t) => {
        const result = await connectMqtt(t, { version, username });
        assert.equal(result.refused, expected, `${username}: CONNACK ${JSON.stringify(result.connack)}`);
        if (version === 5) {
          // The reason and user properties reach MQTT 5 clients.
          assert.ok(result.connack.properties?.reasonString, "a reason string");
          assert.deepEqual(userProperties(result.connack.properties), { refused: username });
        }
        // The upstream saw the CONNECT it refused.
        const log = await waitForUpstream(`connect of ${result.id}`, (e) => e.type === "connect" && e.connectionId === result.id);
        assert.equal(log.mqtt.username, username);
      });
    }

    if (version === 4) {
      test("an MQTT 5 reason code is no 3.1.1 return code: the client is still refused", async (t) => {
        const result = await connectMqtt(t, { version, username: "refuse-138" });
        assert.ok(result.refused > 0, `refused, got ${JSON.stringify(result.connack)}`);
      });
    }

    for (const qos of [0, 1]) {
      test(`publish/subscribe between two MQTT clients with QoS ${qos}`, async (t) => {
        const topic = uid(`mqtt-q${qos}`);
        const a = await connectMqtt(t, { version, id: clientId("sub") });
        const b = await connectMqtt(t, { version, id: clientId("pub") });
        const granted = await within("SUBACK", a.client.subscribeAsync(topic, { qos }));
        assert.equal(granted[0].qos, qos, JSON.stringify(granted));

        await within("PUBLISH", b.client.publishAsync(topic, `hello q${qos}`, { qos }));
        const got = await waitForMessage(`the message on ${topic}`, a.messages, (m) => m.topic === topic);
        assert.equal(got.payload.toString(), `hello q${qos}`);
        assert.equal(got.packet.qos, qos);
        // The publisher did not subscribe: it gets nothing back.
        assert.equal(b.messages.filter((m) => m.topic === topic).length, 0);
      });
    }

    test("MQTT and JSON-subprotocol clients share groups both ways", async (t) => {
      const group = uid("mixed");
      const m = await connectMqtt(t, { version });
      await within("SUBACK", m.client.subscribeAsync(group, { qos: 1 }));
      const json = await startClient(t, { protocol: WebPubSubJsonProtocol(), userId: uid("web") });
      await within("joinGroup", json.client.joinGroup(group));

      // JSON client → MQTT subscriber.
      await json.client.sendToGroup(group, "from json", "text", { noEcho: true });
      const got = await waitForMessage("the JSON client's message", m.messages, (x) => x.topic === group);
      assert.equal(got.payload.toString(), "from json");

      // MQTT publisher → JSON client.
      await within("PUBLISH", m.client.publishAsync(group, "from mqtt", { qos: 1 }));
      const message = await json.waitForGroupMessage((x) => x.group === group && asText(x.data) === "from mqtt");
      assert.equal(message.value.message.fromUserId ?? null, null, "the MQTT client has no user id");
    });

    test("REST sendToGroup, sendToConnection and sendToUser reach an MQTT client", async (t) => {
      const group = uid("rest");
      const user = uid("mqttuser");
      const m = await connectMqtt(t, { version, urlOptions: { userId: user } });
      await within("SUBACK", m.client.subscribeAsync(group, { qos: 1 }));
      const client = service();

      await client.group(group).sendToAll("to the group", { contentType: "text/plain" });
      const inGroup = await waitForMessage("the group message", m.messages, (x) => x.topic === group);
      assert.equal(inGroup.payload.toString(), "to the group");

      await client.sendToConnection(m.id, "to the connection", { contentType: "text/plain" });
      const toConnection = await waitForMessage(
        "the connection message",
        m.messages,
        (x) => x.topic === SERVER_MESSAGES_TOPIC && x.payload.toString() === "to the connection",
      );
      assert.equal(toConnection.topic, SERVER_MESSAGES_TOPIC);

      await client.sendToUser(user, { hello: user });
      const toUser = await waitForMessage(
        "the user message",
        m.messages,
        (x) => x.topic === SERVER_MESSAGES_TOPIC && x.payload.toString().includes(user),
      );
      assert.deepEqual(JSON.parse(toUser.payload.toString()), { hello: user });
    });

    test("a user event topic round trip: answer on …/succeeded, refusal on …/failed", async (t) => {
      const m = await connectMqtt(t, { version });
      const options = version === 5 ? { qos: 1, properties: { correlationData: Buffer.from("c-1") } } : { qos: 1 };
      await within("PUBLISH echo", m.client.publishAsync(`${EVENTS_TOPIC}/echo`, "ping", options));
      const echo = await waitForMessage("the echo answer", m.messages, (x) => x.topic === `${EVENTS_TOPIC}/echo/succeeded`);
      assert.equal(echo.payload.toString(), "ping");
      if (version === 5) {
        assert.equal(echo.packet.properties?.correlationData?.toString(), "c-1");
        assert.equal(String(echo.packet.properties?.userProperties?.["azure-status-code"]), "200");
      }
      const user = await waitForUpstream(
        `the echo event of ${m.id}`,
        (e) => e.type === "user" && e.event === "echo" && e.connectionId === m.id,
      );
      assert.equal(user.subprotocol, "mqtt");

      await within("PUBLISH fail", m.client.publishAsync(`${EVENTS_TOPIC}/fail`, "x", { qos: 1 }));
      const failed = await waitForMessage("the fail answer", m.messages, (x) => x.topic === `${EVENTS_TOPIC}/fail/failed`);
      assert.match(failed.payload.toString(), /refuses `fail`/);
      if (version === 5) {
        assert.equal(String(failed.packet.properties?.userProperties?.["azure-status-code"]), "400");
      }
    });

    test("DISCONNECT from the client: disconnected at the upstream with initiatedByClient", async (t) => {
      const m = await connectMqtt(t, { version });
      await waitForUpstream(`connected of ${m.id}`, (e) => e.type === "connected" && e.connectionId === m.id);
      const bye = version === 5 ? { reasonCode: 0, properties: { userProperties: { bye: "now" } } } : undefined;
      await within("end()", m.client.endAsync(false, bye));
      const gone = await waitForUpstream(
        `disconnected of ${m.id}`,
        (e) => e.type === "disconnected" && e.connectionId === m.id,
      );
      assert.equal(gone.mqtt?.initiatedByClient, true, JSON.stringify(gone));
      assert.equal(gone.mqtt.disconnectPacket?.code, 0);
      if (version === 5) {
        assert.deepEqual(gone.mqtt.disconnectPacket.userProperties, [{ name: "bye", value: "now" }]);
      }
    });

    test("a will reaches its group when the socket drops, and not after a DISCONNECT", async (t) => {
      const topic = uid("will");
      const watcher = await connectMqtt(t, { version, id: clientId("watch") });
      await within("SUBACK", watcher.client.subscribeAsync(topic, { qos: 1 }));
      const will = (payload) => ({ topic, payload: Buffer.from(payload), qos: 1, retain: false });

      const polite = await connectMqtt(t, { version, id: clientId("polite"), will: will("polite left") });
      await within("DISCONNECT", polite.client.endAsync());
      await waitForUpstream(`disconnected of ${polite.id}`, (e) => e.type === "disconnected" && e.connectionId === polite.id);

      const dropped = await connectMqtt(t, { version, id: clientId("dropped"), will: will("dropped left") });
      dropped.client.stream.destroy();
      const got = await waitForMessage("the will", watcher.messages, (m) => m.topic === topic);
      assert.equal(got.payload.toString(), "dropped left");
      assert.equal(got.packet.qos, 1);
      // Had the polite client's will gone out, it would have come first.
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.deepEqual(
        watcher.messages.filter((m) => m.topic === topic).map((m) => m.payload.toString()),
        ["dropped left"],
      );
    });

    test("a dropped socket: disconnected at the upstream, not initiated by the client", async (t) => {
      const m = await connectMqtt(t, { version });
      await waitForUpstream(`connected of ${m.id}`, (e) => e.type === "connected" && e.connectionId === m.id);
      m.client.stream.destroy();
      const gone = await waitForUpstream(
        `disconnected of ${m.id}`,
        (e) => e.type === "disconnected" && e.connectionId === m.id,
      );
      assert.equal(gone.mqtt?.initiatedByClient, false, JSON.stringify(gone));
      assert.equal(gone.mqtt.disconnectPacket, null);
    });
  });
}
