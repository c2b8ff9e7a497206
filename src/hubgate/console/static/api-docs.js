// Swagger UI for one instance, authorized with its Element token (D33).
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  if (!root || typeof window.SwaggerUIBundle !== "function") {
    return;
  }
  var authorization = "Element " + root.getAttribute("data-token");
  var apiBase = new URL(root.getAttribute("data-api-base"), window.location.href).href;

  function ours(url) {
    // Only this hub's own API ever sees the token.
    return new URL(url, window.location.href).href.indexOf(apiBase) === 0;
  }

  function hasAuthorization(headers) {
    return Object.keys(headers || {}).some(function (name) {
      return name.toLowerCase() === "authorization";
    });
  }

  window.hubgateSwagger = window.SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    domNode: root,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: false,
    // The default validator badge would load an image from another host.
    validatorUrl: null,
    persistAuthorization: false,
    requestInterceptor: function (request) {
      if (ours(request.url) && !hasAuthorization(request.headers)) {
        request.headers = request.headers || {};
        request.headers.Authorization = authorization;
      }
      return request;
    },
    onComplete: function () {
      // Fill every API-key scheme the document declares, so the lock icons show "authorized".
      var spec = window.hubgateSwagger.specSelectors.specJson().toJS();
      var schemes = (spec.components && spec.components.securitySchemes) || {};
      Object.keys(schemes).forEach(function (name) {
        if (schemes[name].type === "apiKey") {
          window.hubgateSwagger.preauthorizeApiKey(name, authorization);
        }
      });
    }
  });
})();
