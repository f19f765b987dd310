// The API docs page: Swagger UI from the app's own files, started here rather than in an
// inline script, which the Content-Security-Policy forbids.
"use strict";

const root = document.getElementById("swagger-ui");
SwaggerUIBundle({ url: root.dataset.openapiUrl, dom_id: "#swagger-ui", deepLinking: true });
