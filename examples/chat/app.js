// The chat page: negotiate a URL, connect with the JSON subprotocol, send
// chat lines as `message` events, show what the room broadcasts.
"use strict";

const $ = (id) => document.getElementById(id);
let socket = null;
let me = null;
let ackId = 0;
/// Invocations sent and not yet answered, by id.
const invocations = new Map();
let invocationId = 0;
/// Why the socket closed, for the note on the join form.
let closing = null;

function setStatus(text, kind) {
  const status = $("status");
  status.textContent = text;
  status.className = "status " + (kind || "");
}

function time() {
  return new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function addLine(kind, parts) {
  const li = document.createElement("li");
  li.className = kind;
  const when = document.createElement("time");
  when.textContent = time();
  li.append(when);
  for (const [cls, text] of parts) {
    const span = document.createElement("span");
    span.className = cls;
    span.textContent = text;
    li.append(span);
  }
  const list = $("messages");
  list.append(li);
  list.scrollTop = list.scrollHeight;
}

function showOnline(users) {
  const list = $("online");
  list.replaceChildren(
    ...users.map((user) => {
      const li = document.createElement("li");
      li.textContent = user;
      if (user === me) li.className = "me";
      return li;
    }),
  );
  $("online-count").textContent = String(users.length);
}

function onNotice(notice) {
  switch (notice.kind) {
    case "message":
      addLine(notice.user === me ? "message mine" : "message", [
        ["author", notice.user],
        ["text", notice.text],
      ]);
      break;
    case "joined":
      addLine("notice", [["text", `${notice.user} joined`]]);
      showOnline(notice.online || []);
      break;
    case "left":
      addLine("notice", [["text", `${notice.user} left`]]);
      showOnline(notice.online || []);
      break;
    case "online":
      showOnline(notice.online || []);
      break;
  }
}

/// Back to the join form, with `note` saying why (you left, the service closed).
function showJoin(note) {
  $("room").hidden = true;
  $("join").hidden = false;
  $("messages").replaceChildren();
  $("join-note").textContent = note;
  $("join-note").hidden = !note;
  if (me) $("name").value = me;
  $("name").focus();
}

async function join(name) {
  $("join-error").hidden = true;
  $("join-note").hidden = true;
  closing = null;
  setStatus("connecting…", "busy");
  const response = await fetch(`/negotiate?name=${encodeURIComponent(name)}`);
  if (!response.ok) throw new Error(await response.text());
  const { url } = await response.json();
  me = name;
  socket = new WebSocket(url, "json.webpubsub.azure.v1");
  socket.onmessage = (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type === "system" && frame.event === "connected") {
      setStatus(`connected as ${frame.userId}`, "ok");
      $("join").hidden = true;
      $("room").hidden = false;
      $("text").focus();
    } else if (frame.type === "system" && frame.event === "disconnected") {
      closing = closing || `Disconnected by the service: ${frame.message}`;
    } else if (frame.type === "message" && frame.dataType === "json") {
      onNotice(frame.data);
    } else if (frame.type === "ack" && !frame.success) {
      addLine("notice error", [["text", `not sent: ${frame.error.message}`]]);
    } else if (frame.type === "invokeResponse") {
      const answered = invocations.get(frame.invocationId);
      invocations.delete(frame.invocationId);
      if (answered) answered(frame);
    }
  };
  socket.onclose = (event) => {
    const wasIn = !$("room").hidden;
    setStatus("not connected", "");
    socket = null;
    if (wasIn) showJoin(closing || `Connection lost (code ${event.code}). Join again to continue.`);
  };
  socket.onerror = () => {
    $("join-error").textContent = "Could not connect.";
    $("join-error").hidden = false;
  };
}

$("join").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = $("name").value.trim();
  if (!name) return;
  join(name).catch((error) => {
    setStatus("not connected", "");
    $("join-error").textContent = error.message;
    $("join-error").hidden = false;
  });
});

$("send").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("text").value.trim();
  if (!text || !socket) return;
  ackId += 1;
  socket.send(JSON.stringify({ type: "event", event: "message", dataType: "text", data: text, ackId }));
  $("text").value = "";
});

/// Asks the event handler, through the service, and resolves with its
/// `invokeResponse` (only this page gets the answer).
function invoke(event) {
  invocationId += 1;
  const id = String(invocationId);
  return new Promise((resolve) => {
    invocations.set(id, resolve);
    socket.send(JSON.stringify({ type: "invoke", invocationId: id, target: "event", event }));
  });
}

$("who").addEventListener("click", async () => {
  if (!socket) return;
  const answer = await invoke("online");
  if (answer.success && Array.isArray(answer.data)) {
    showOnline(answer.data);
    addLine("notice", [["text", `Here now: ${answer.data.join(", ")}`]]);
  } else {
    addLine("notice error", [["text", `could not ask: ${answer.error?.message || "no answer"}`]]);
  }
});

$("leave").addEventListener("click", () => {
  closing = "You left the chat. Join again with this name or another.";
  if (socket) socket.close(1000);
  else showJoin(closing);
});
