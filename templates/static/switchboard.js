// Small progressive enhancements; every page works without this file. Listeners only: the CSP
// allows no inline handler, and htmx runs without eval, so no hx-on attribute either.
document.addEventListener("keydown", (event) => {
  const box = event.target;
  if (box.id === "content" && event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    box.form.requestSubmit();
    return;
  }
  // Ctrl+K (Cmd+K on a Mac) goes to the conversation search.
  if ((event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === "k") {
    const search = document.getElementById("search");
    if (search) {
      event.preventDefault();
      search.focus();
      search.select();
    }
    return;
  }
  // Esc stops the answer being written (a dialog or menu of the browser takes Esc first).
  if (event.key === "Escape" && !event.isComposing) {
    const stop = document.querySelector(".message .stop");
    if (stop) {
      event.preventDefault();
      stop.click();
    }
  }
});

// Copy buttons: a whole message (data-copy names its body) or one code block (data-copy-code,
// rendered by the server before its <pre>).
async function copyText(button, text) {
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
  } catch (error) {
    button.textContent = "Copy failed";
  }
  window.setTimeout(() => { button.textContent = "Copy"; }, 2000);
}
document.addEventListener("click", (event) => {
  const code = event.target.closest("[data-copy-code]");
  if (code) {
    const pre = code.parentElement.querySelector("pre");
    if (pre) copyText(code, pre.textContent);
    return;
  }
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  const clone = source.cloneNode(true);  // the text without the code blocks' buttons
  clone.querySelectorAll("[data-copy-code]").forEach((b) => b.remove());
  copyText(button, clone.textContent.trim());
});

// The composer empties once its message was accepted.
document.addEventListener("htmx:afterRequest", (event) => {
  const form = event.target;
  if (form.id === "composer" && event.detail.successful) {
    const model = form.querySelector("[name=model]");
    const chosen = model ? model.value : null;
    form.reset();
    if (model) model.value = chosen;  // the picker keeps the conversation's model
  }
});

// Auto-scroll while an answer streams, until the reader scrolls up (and again once they are
// back at the bottom).
const NEAR_BOTTOM_PX = 80;
let following = true;
let lastScrollY = window.scrollY;
function atBottom() {
  return window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - NEAR_BOTTOM_PX;
}
window.addEventListener("scroll", () => {
  if (window.scrollY < lastScrollY && !atBottom()) following = false;
  else if (atBottom()) following = true;
  lastScrollY = window.scrollY;
}, { passive: true });
document.addEventListener("htmx:afterRequest", (event) => {
  if (event.target.id === "composer") following = true;  // a new question: follow its answer
});
document.addEventListener("htmx:sseMessage", () => {
  if (!following) return;
  window.scrollTo({ top: document.documentElement.scrollHeight });
  lastScrollY = window.scrollY;
});

// Errors from htmx requests appear in place, not as a silent failure. The server answers an
// htmx request's error with a toast fragment aimed at #toast (HX-Retarget), keeping its status:
// htmx swaps no error response unless told, so it is told here, for those answers only.
document.addEventListener("htmx:beforeSwap", (event) => {
  const xhr = event.detail.xhr;
  if (xhr.status >= 400 && xhr.getResponseHeader("HX-Retarget") === "#toast") {
    event.detail.shouldSwap = true;  // still an error: the composer keeps what was typed
  }
});

// The tab's title follows the conversation's title field whenever a swap changed it (the first
// message, a generated title, a rename): the server sends the field, out of band.
function syncTitle() {
  const field = document.getElementById("title");
  if (!field) return;
  const title = `${field.getAttribute("value")} · Switchboard`;
  if (document.title !== title) document.title = title;
}
["htmx:afterSettle", "htmx:oobAfterSwap", "htmx:sseMessage"].forEach((name) => {
  document.addEventListener(name, syncTitle);
});

// An error without a fragment (a proxy's page, no answer at all): a toast with the status.
function showToast(message, detail) {
  const region = document.getElementById("toast");
  if (!region) return;
  const toast = document.createElement("div");
  toast.className = "toast";
  const text = document.createElement("p");
  text.textContent = message;
  toast.append(text);
  if (detail) {
    const more = document.createElement("p");
    more.className = "muted";
    more.textContent = detail;
    toast.append(more);
  }
  const close = document.createElement("button");
  close.type = "button";
  close.className = "toast-close secondary";
  close.dataset.dismissToast = "";
  close.textContent = "Dismiss";
  toast.append(close);
  region.replaceChildren(toast);
}
document.addEventListener("htmx:responseError", (event) => {
  const xhr = event.detail.xhr;
  if (xhr.getResponseHeader("HX-Retarget") === "#toast") return;  // already shown
  const id = xhr.getResponseHeader("x-request-id");
  showToast(`Something went wrong (error ${xhr.status}).`, id ? `Request id ${id}` : "");
});
document.addEventListener("htmx:sendError", () => {
  showToast("Switchboard could not be reached. Check the connection, then try again.", "");
});

// A toast stays until it is dismissed (its button, or Esc while it has the focus).
document.addEventListener("click", (event) => {
  const close = event.target.closest("[data-dismiss-toast]");
  if (close) close.closest(".toast").remove();
});
document.addEventListener("keydown", (event) => {
  const toast = event.target.closest && event.target.closest(".toast");
  if (toast && event.key === "Escape") {
    event.stopPropagation();
    toast.remove();
  }
}, true);
