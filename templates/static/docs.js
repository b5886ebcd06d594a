// Starts the Swagger UI on /docs (src/switchboard/web/docs_ui.py) from the vendored bundle; the
// page's CSP allows no inline script, so its one setting (the schema's URL) is a data attribute.
"use strict";
(() => {
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.spec,
    dom_id: "#swagger-ui",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null, // the badge would load an image from the validator's own host
    presets: [SwaggerUIBundle.presets.apis],
  });
})();
