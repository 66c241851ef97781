// Entry point: client-side routing, the token prompt, and one live view at a time.

import { AuthError, setToken, token } from "./api.js";
import { renderCluster } from "./cluster.js";
import { errorBox, go } from "./format.js";
import { renderStudies } from "./studies.js";
import { renderStudy } from "./study.js";

const view = document.getElementById("view");
const authPanel = document.getElementById("auth-panel");
let current = null;

const ROUTES = [
  [/^\/$/, (ctx) => renderStudies(ctx)],
  [/^\/cluster\/?$/, (ctx) => renderCluster(ctx)],
  [/^\/studies\/(\d+)\/?$/, (ctx, m) => renderStudy(ctx, Number(m[1]), null)],
  [/^\/studies\/(\d+)\/trials\/(\d+)\/?$/, (ctx, m) => renderStudy(ctx, Number(m[1]), Number(m[2]))],
];

// What a page gets: where to draw, a signal that aborts when it is left, and helpers.
class ViewContext {
  constructor(root) {
    this.root = root;
    this.controller = new AbortController();
    this.signal = this.controller.signal;
    this.timers = [];
    this.reroute = null; // (path) => true when the page showed `path` itself
  }

  every(ms, fn) {
    this.timers.push(setInterval(() => this.alive && fn(), ms));
  }

  get alive() {
    return !this.signal.aborted;
  }

  fail(err) {
    if (!this.alive) return;
    if (err instanceof AuthError) {
      showAuth();
      return;
    }
    console.error(err);
    this.root.prepend(errorBox(err));
  }

  close() {
    this.controller.abort();
    this.timers.forEach(clearInterval);
  }
}

function render({ force = false } = {}) {
  // A page may take a move within itself (a study's trial panel) without being rebuilt.
  if (!force && current?.alive && !view.hidden && current.reroute?.(location.pathname)) return;
  current?.close();
  document.getElementById("live-indicator").hidden = true;
  authPanel.hidden = true;
  view.hidden = false;
  view.replaceChildren();
  document.getElementById("token-forget").hidden = !token();
  const path = location.pathname;
  const route = ROUTES.find(([re]) => re.test(path));
  const ctx = new ViewContext(view);
  current = ctx;
  if (!route) {
    view.append(errorBox(new Error(`no page at ${path}`)));
    return;
  }
  const [pattern, page] = route;
  Promise.resolve(page(ctx, path.match(pattern))).catch((err) => ctx.fail(err));
}

function showAuth() {
  current?.close();
  document.getElementById("live-indicator").hidden = true;
  view.hidden = true;
  view.replaceChildren();
  authPanel.hidden = false;
  const error = document.getElementById("auth-error");
  error.hidden = !token();
  error.textContent = token() ? "The stored token was refused; enter another." : "";
  document.getElementById("token-input").focus();
}

document.getElementById("auth-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("token-input");
  setToken(input.value.trim());
  input.value = "";
  render({ force: true });
});

document.getElementById("token-forget").addEventListener("click", () => {
  setToken("");
  render({ force: true });
});

document.addEventListener("click", (event) => {
  const a = event.target.closest("a[data-link]");
  if (!a || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  event.preventDefault();
  go(a.getAttribute("href"));
});

window.addEventListener("popstate", () => render());
render();
