// The demo page of `eventpatterns serve --demo`, on the repo's JavaScript client.
// Event data is untrusted: it reaches the page only through textContent, never as HTML.
import { connect } from "./eventpatterns.js";

const $ = (id) => document.getElementById(id);
const JOB_EVENTS = { type: [{ prefix: "eventpatterns.job." }] };
const FINAL = new Set(["succeeded", "failed", "cancelled"]);

// A name per tab; `#token=...` in the address instead when the server has an authorizer.
const fragment = new URLSearchParams(location.hash.slice(1));
const guest = `guest-${Math.random().toString(36).slice(2, 6).padEnd(4, "0")}`;
const token = fragment.get("token") || guest;
const auth = { authorization: `Bearer ${token}` };
$("me").textContent = fragment.get("token") ? "(your token)" : guest;

const scheme = location.protocol === "https:" ? "wss" : "ws";
const client = connect(`${scheme}://${location.host}/ws`, { getToken: () => token });
client.on("state", (state) => { $("state").textContent = state; });
client.on("open", ({ principal }) => { if (principal) $("me").textContent = principal; });

// What the test (and a curious reader in the console) can look at.
const state = { feed: null, pattern: null, jobs: null, presence: null, job: null };
window.demo = state;

function say(id, text, refused = false) {
  const node = $(id);
  node.textContent = text;
  node.classList.toggle("refused", refused);
}

async function problemText(response) {
  try {
    const body = await response.json();
    return `${response.status} ${body.title || ""}: ${body.detail || ""}`;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

// -- live events, filtered on the server -------------------------------------------------

function showEvent(event, position) {
  const item = document.createElement("li");
  const type = document.createElement("code");
  type.textContent = String(event.type);
  item.append(type, ` from ${String(event.source)} at ${position}: `, JSON.stringify(event.data ?? null));
  $("feed").prepend(item);
  while ($("feed").children.length > 50) $("feed").lastElementChild.remove();
}

function applyFilter() {
  let pattern;
  try {
    pattern = JSON.parse($("filter").value);
  } catch (error) {
    say("filter-status", `Not JSON: ${error.message}`, true);
    return;
  }
  state.feed?.unsubscribe();
  state.pattern = pattern;
  say("filter-status", "Subscribing…");
  const sub = client.subscribe({ pattern }, (event, { position }) => showEvent(event, position), {
    onError: ({ code, message }) => say("filter-status", `Refused (${code}): ${message}`, true),
  });
  state.feed = sub;
  const confirm = setInterval(() => {
    if (sub !== state.feed || !sub.active) clearInterval(confirm);
    else if (sub.confirmed) {
      clearInterval(confirm);
      say("filter-status", "Live: the feed shows the events this pattern matches.");
    }
  }, 50);
}

async function publish() {
  $("explanation").hidden = true;
  let event;
  try {
    event = JSON.parse($("event").value);
    if (event === null || typeof event !== "object" || Array.isArray(event)) throw new Error("not an object");
  } catch (error) {
    say("publish-status", `The event must be a JSON object (${error.message})`, true);
    return;
  }
  event = { specversion: "1.0", id: `demo-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`, ...event };
  const published = await fetch("/publish", {
    method: "POST",
    headers: { "content-type": "application/cloudevents+json", ...auth },
    body: JSON.stringify(event),
  });
  if (!published.ok) {
    say("publish-status", `Not published: ${await problemText(published)}`, true);
    return;
  }
  const { position } = await published.json();
  if (state.pattern === null) {
    say("publish-status", `Published at ${position}.`);
    return;
  }
  const explained = await fetch("/demo/explain", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ pattern: state.pattern, event }),
  });
  if (!explained.ok) {
    say("publish-status", `Published at ${position}; no explanation: ${await problemText(explained)}`, true);
    return;
  }
  const explanation = await explained.json();
  if (explanation.matched) {
    say("publish-status", `Published at ${position}: it matches the filter, so the feed shows it.`);
  } else {
    say("publish-status", `Published at ${position}, but the filter does not match it, so the feed does not show it:`);
    $("explanation").textContent = explanation.text;
    $("explanation").hidden = false;
  }
}

// -- a long-running job, its progress pushed by the gateway ------------------------------

const jobs = new Map(); // job id -> the newest view seen
function renderJob(view) {
  const known = jobs.get(view.id);
  if (known && known.version > view.version) return;
  jobs.set(view.id, view);
  if (view.id !== state.job) return;
  const percent = Math.round((view.progress?.fraction ?? 0) * 100);
  $("job-progress").value = percent;
  $("job-progress").textContent = `${percent}%`;
  $("job-percent").textContent = `${percent}%`;
  const note = view.progress?.message ? ` (${view.progress.message})` : "";
  say("job-state", `${view.state}${note}`, view.state === "failed");
  if (FINAL.has(view.state)) $("start-job").disabled = false;
  if (view.state === "succeeded" && !$("job-result").dataset.job) {
    $("job-result").dataset.job = view.id;
    fetchResult(view.id).catch((error) => say("job-state", `succeeded; no result: ${error.message}`, true));
  }
}

async function fetchResult(id) {
  const response = await fetch(`/jobs/${encodeURIComponent(id)}/result`, { headers: auth });
  if (!response.ok) {
    say("job-state", `succeeded, but the result: ${await problemText(response)}`, true);
    return;
  }
  const link = $("job-result");
  link.href = URL.createObjectURL(await response.blob());
  link.hidden = false;
}

async function startJob() {
  $("start-job").disabled = true;
  const link = $("job-result");
  link.hidden = true;
  delete link.dataset.job;
  try {
    const response = await fetch(`/jobs/demo`, {
      method: "POST",
      headers: { "content-type": "application/json", ...auth },
      body: "{}",
    });
    if (!response.ok) {
      say("job-state", `Not started: ${await problemText(response)}`, true);
      return;
    }
    const view = await response.json();
    state.job = view.id;
    renderJob(jobs.get(view.id) ?? view); // its events may have come first
  } catch (error) {
    say("job-state", `Not started: ${error.message}`, true);
  } finally {
    if (state.job === null || FINAL.has(jobs.get(state.job)?.state)) $("start-job").disabled = false;
  }
}

// -- presence: who is online --------------------------------------------------------------

function renderPresence(members) {
  const list = $("presence");
  list.replaceChildren();
  for (const member of [...members].sort()) {
    const item = document.createElement("li");
    item.textContent = member === client.principal ? `${member} (you)` : member;
    item.classList.toggle("you", member === client.principal);
    list.append(item);
  }
}

// -- wiring -------------------------------------------------------------------------------

state.jobs = client.subscribe({ pattern: JOB_EVENTS }, (event) => {
  if (event.data && typeof event.data === "object" && typeof event.data.id === "string") renderJob(event.data);
});
state.presence = client.subscribe(
  { pattern: { type: ["eventpatterns.demo.presence"] }, presence: "demo", watch: true },
  () => {},
  { onPresence: (change, members) => renderPresence(members) },
);
$("filter-form").addEventListener("submit", (event) => { event.preventDefault(); applyFilter(); });
$("publish-form").addEventListener("submit", (event) => {
  event.preventDefault();
  publish().catch((error) => say("publish-status", `Not published: ${error.message}`, true));
});
$("start-job").addEventListener("click", () => startJob());
applyFilter();
