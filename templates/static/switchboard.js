// Small progressive enhancements; every page works without this file.
document.addEventListener("keydown", (event) => {
  const box = event.target;
  if (box.id === "content" && event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    box.form.requestSubmit();
  }
});
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  await navigator.clipboard.writeText(source.textContent.trim());
  button.textContent = "Copied";
});
// Copy buttons on code blocks of answers.
function addCopyButtons(root) {
  root.querySelectorAll(".markdown pre:not([data-copyable])").forEach((pre, index) => {
    pre.dataset.copyable = "1";
    const code = pre.querySelector("code") || pre;
    code.id = code.id || `code-${Date.now()}-${index}`;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.dataset.copy = `#${code.id}`;
    button.textContent = "Copy";
    pre.before(button);
  });
}
document.addEventListener("DOMContentLoaded", () => addCopyButtons(document));
document.addEventListener("htmx:afterSwap", (event) => addCopyButtons(document));
// The composer empties once its message was accepted (a listener here: the CSP allows no inline
// handler, and htmx runs without eval, so no hx-on attribute either).
document.addEventListener("htmx:afterRequest", (event) => {
  const form = event.target;
  if (form.id === "composer" && event.detail.successful) form.reset();
});
document.addEventListener("htmx:sseMessage", () => {
  const list = document.getElementById("messages");
  if (list) list.lastElementChild?.scrollIntoView({ block: "end" });
});
// Errors from htmx requests appear in place, not as a silent failure.
document.addEventListener("htmx:responseError", (event) => {
  const toast = document.getElementById("toast");
  const id = event.detail.xhr.getResponseHeader("x-request-id") || "";
  toast.textContent = `Something went wrong (${event.detail.xhr.status}). Request id ${id}`;
});
