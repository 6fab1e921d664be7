// Shared helpers of the node tests. Run by tests/npm_clients.rs, which
// starts the emulator and an upstream built with the webpubsub crate and
// sets the WPS_* environment variables read here.

import { randomUUID } from "node:crypto";
import { WebPubSubClient, WebPubSubJsonProtocol } from "@azure/web-pubsub-client";
import { WebPubSubServiceClient } from "@azure/web-pubsub";

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set: these tests are run by \`cargo test -p webpubsub-emulator --test npm_clients\``,
    );
  }
  return value;
}

export const env = {
  connectionString: required("WPS_CONNECTION_STRING"),
  hub: required("WPS_HUB"),
  isolatedHub: required("WPS_HUB_ISOLATED"),
  endpoint: required("WPS_ENDPOINT"),
  upstreamLog: required("WPS_UPSTREAM_LOG"),
};

/** How long one wait may take. */
export const WAIT_MS = 5000;

export const JSON_SUBPROTOCOL = "json.webpubsub.azure.v1";
export const RELIABLE_SUBPROTOCOL = "json.reliable.webpubsub.azure.v1";

/** Both JSON protocols of the client, for tests that run with each. */
export const PROTOCOLS = [
  { name: "reliable (default)", subprotocol: RELIABLE_SUBPROTOCOL, make: () => undefined },
  { name: "WebPubSubJsonProtocol()", subprotocol: JSON_SUBPROTOCOL, make: () => WebPubSubJsonProtocol() },
];

/** A name unique to this run, so parallel test files never share users or groups. */
export function uid(prefix) {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/**
 * A service client from the emulator's connection string. The emulator
 * speaks plain http, which the Azure pipeline refuses unless told
 * `allowInsecureConnection: true`.
 */
export function service(hub = env.hub) {
  return new WebPubSubServiceClient(env.connectionString, hub, { allowInsecureConnection: true });
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `probe` until it returns a truthy value (returned), failing after `ms`. */
export async function waitUntil(what, probe, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await probe();
    if (last) return last;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    }
    await sleep(25);
  }
}

/** Rejects if `promise` takes longer than `ms`. */
export async function within(what, promise, ms = WAIT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Every event the upstream saw, oldest first. */
export async function upstreamLog() {
  const response = await fetch(env.upstreamLog);
  if (!response.ok) throw new Error(`GET ${env.upstreamLog}: ${response.status}`);
  return response.json();
}

/** Waits for the upstream to have seen an event matching `match`; returns it. */
export function waitForUpstream(what, match, ms = WAIT_MS) {
  return waitUntil(`the upstream to see ${what}`, async () => (await upstreamLog()).find(match), ms);
}

/** The emulator's live view: `{ hubs: { hub: [connection…] }, upstreamCalls: [...] }`. */
export async function emulatorState() {
  const response = await fetch(`${env.endpoint}/_emulator/api/state`);
  if (!response.ok) throw new Error(`GET /_emulator/api/state: ${response.status}`);
  return response.json();
}

/** The emulator's view of one connection (or undefined). */
export async function emulatorConnection(connectionId, hub = env.hub) {
  const state = await emulatorState();
  return (state.hubs[hub.toLowerCase()] ?? []).find((c) => c.connectionId === connectionId);
}

/**
 * A started WebPubSubClient that records everything it emits.
 *
 * `events` holds `{ kind, value, at }` in the order the client emitted them
 * (`kind`: connected, disconnected, stopped, server-message, group-message,
 * rejoin-group-failed); `at` is a running index shared with `mark()`.
 */
export class Probe {
  constructor(client) {
    this.client = client;
    this.events = [];
    this.counter = 0;
    this.waiters = [];
    for (const kind of [
      "connected",
      "disconnected",
      "stopped",
      "server-message",
      "group-message",
      "rejoin-group-failed",
    ]) {
      client.on(kind, (value) => this.record(kind, value));
    }
  }

  record(kind, value) {
    this.events.push({ kind, value, at: this.counter++ });
    for (const waiter of [...this.waiters]) waiter();
  }

  /** A position in the event sequence, to compare with events' `at`. */
  mark() {
    return this.counter++;
  }

  /** The events of `kind`, optionally filtered. */
  all(kind, match = () => true) {
    return this.events.filter((e) => e.kind === kind && match(e.value));
  }

  /** Waits for an event of `kind` whose value matches; returns the entry. */
  waitFor(kind, match = () => true, ms = WAIT_MS) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.events.find((e) => e.kind === kind && match(e.value));
        if (found) {
          done();
          resolve(found);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `timed out after ${ms} ms waiting for a '${kind}' event; got: ${JSON.stringify(
              this.events.map((e) => ({ kind: e.kind, value: printable(e.value) })),
            )}`,
          ),
        );
      }, ms);
      const done = () => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
      };
      this.waiters.push(check);
      check();
    });
  }

  /** The `message` of server messages / group messages received so far. */
  serverMessages(match = () => true) {
    return this.all("server-message", (v) => match(v.message)).map((e) => e.value.message);
  }

  groupMessages(match = () => true) {
    return this.all("group-message", (v) => match(v.message)).map((e) => e.value.message);
  }

  waitForServerMessage(match, ms) {
    return this.waitFor("server-message", (v) => match(v.message), ms);
  }

  waitForGroupMessage(match, ms) {
    return this.waitFor("group-message", (v) => match(v.message), ms);
  }

  get connectionId() {
    return this.connected?.connectionId;
  }

  /** Stops the client and waits for `stopped` (no-op when already stopped). */
  async stop() {
    if (this.all("stopped").length > 0) return;
    this.client.stop();
    await this.waitFor("stopped").catch(() => {});
  }
}

function printable(value) {
  return JSON.parse(
    JSON.stringify(value, (_, v) => (v instanceof ArrayBuffer ? `<${v.byteLength} bytes>` : v)),
  );
}

/**
 * Options of every test client: no automatic reconnect, no message retries
 * (a Forbidden ack would otherwise be retried with new ackIds), and no
 * keep-alive tasks: the client's keep-alive loops sleep with timers that
 * stop() does not cancel (20 s ping, 40 s timeout check), which would keep
 * node alive long after the tests. The keep-alive test turns them back on
 * with short intervals.
 */
export const CLIENT_OPTIONS = {
  autoReconnect: false,
  messageRetryOptions: { maxRetries: 0 },
  keepAliveIntervalInMs: 0,
  keepAliveTimeoutInMs: 0,
};

/**
 * A client access URL from the service SDK (local signing), with `query`
 * parameters appended (the upstream reads `role=none`, `join`, `reject`).
 */
export async function clientUrl({ hub = env.hub, query = {}, ...tokenOptions } = {}) {
  const { url } = await service(hub).getClientAccessToken(tokenOptions);
  const extra = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    for (const v of [].concat(value)) extra.append(key, v);
  }
  const tail = extra.toString();
  return tail ? `${url}&${tail}` : url;
}

/**
 * Starts a client and waits for its `connected` event. Options: `userId`,
 * `roles`, `groups` (token), `query`, `hub`, `protocol` (a protocol object or
 * undefined for the default reliable one), `clientOptions` (merged).
 * Registers `t.after` to stop it when `t` is given.
 */
export async function startClient(t, { protocol, clientOptions = {}, ...urlOptions } = {}) {
  const url = await clientUrl(urlOptions);
  // protocol undefined = the client's default, the reliable protocol.
  const client = new WebPubSubClient(url, { ...CLIENT_OPTIONS, protocol, ...clientOptions });
  const probe = new Probe(client);
  if (t) t.after(() => probe.stop());
  await within("client.start()", client.start());
  const connected = await probe.waitFor("connected");
  probe.connected = connected.value;
  return probe;
}

/** Drains: resolves once a marker sent with sendToConnection arrived, so
 * everything sent to that connection before it has arrived too. */
export async function flush(probe, hub = env.hub) {
  const marker = uid("flush");
  await service(hub).sendToConnection(probe.connectionId, marker, { contentType: "text/plain" });
  await probe.waitForServerMessage((m) => m.data === marker);
  return marker;
}
