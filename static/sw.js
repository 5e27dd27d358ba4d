/* The shopper's service worker (scope /me/): missions once opened keep working offline. */
"use strict";

var CACHE = "barometre-shopper-v1";
var ASSETS = [
  "/static/css/app.css",
  "/static/css/grid.css",
  "/static/js/grid.js",
  "/static/js/htmx-2.0.11.min.js",
  "/static/favicon.svg",
  "/me/offline"
];

function keep(cache, url) {
  return fetch(url, {credentials: "same-origin"}).then(function (response) {
    if (response.ok && !response.redirected) { return cache.put(url, response); }
  }).catch(function () { /* offline now: kept next time */ });
}

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) {
    return Promise.all(ASSETS.map(function (url) { return keep(cache, url); }));
  }).then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (name) { return name !== CACHE; }).map(function (name) {
      return caches.delete(name);
    }));
  }).then(function () { return self.clients.claim(); }));
});

/* The page asks for its own copy (and the offline fallback) once it has been opened. */
self.addEventListener("message", function (event) {
  var urls = (event.data && event.data.cache) || [];
  event.waitUntil(caches.open(CACHE).then(function (cache) {
    return Promise.all(urls.concat(ASSETS).filter(function (url) {
      return typeof url === "string" && url.charAt(0) === "/";
    }).map(function (url) { return keep(cache, url); }));
  }));
});

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") { return; }
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) { return; }

  if (url.pathname.indexOf("/static/") === 0) {
    /* Assets: the cached copy at once, refreshed behind the scenes. */
    event.respondWith(caches.open(CACHE).then(function (cache) {
      return cache.match(request, {ignoreSearch: true}).then(function (cached) {
        var fresh = fetch(request).then(function (response) {
          if (response.ok) { cache.put(url.pathname, response.clone()); }
          return response;
        });
        return cached || fresh;
      });
    }));
    return;
  }

  if (request.mode === "navigate" && url.pathname.indexOf("/me/missions/") === 0) {
    /* Mission pages: the network when there is one (fresh state), else the copy. */
    event.respondWith(fetch(request).then(function (response) {
      if (response.ok && !response.redirected) {
        var copy = response.clone();
        caches.open(CACHE).then(function (cache) { cache.put(url.pathname, copy); });
      }
      return response;
    }).catch(function () {
      return caches.open(CACHE).then(function (cache) {
        return cache.match(url.pathname).then(function (cached) {
          return cached || cache.match("/me/offline");
        });
      });
    }));
  }
});
