// steadylink UI: copy buttons and "Your links" kept in this browser only.
// Served as a static file so pages run under script-src 'self'.
(function () {
  "use strict";
  var KEY = "steadylink.links";
  var MAX = 50;

  function load() {
    try {
      var items = JSON.parse(window.localStorage.getItem(KEY) || "[]");
      return Array.isArray(items) ? items : [];
    } catch (e) {
      return [];
    }
  }

  function save(items) {
    try {
      window.localStorage.setItem(KEY, JSON.stringify(items.slice(0, MAX)));
    } catch (e) {
      /* storage full or disabled: the list is a convenience, not a record */
    }
  }

  function remember(card) {
    var code = card.dataset.code;
    var items = load().filter(function (item) { return item.code !== code; });
    items.unshift({
      code: code,
      shortUrl: card.dataset.shortUrl,
      target: card.dataset.target,
      createdAt: card.dataset.createdAt
    });
    save(items);
  }

  function copy(button) {
    var text = button.dataset.copy;
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      button.classList.add("copied");
      window.setTimeout(function () {
        button.textContent = label;
        button.classList.remove("copied");
      }, 1600);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text, done); });
    } else {
      fallbackCopy(text, done);
    }
  }

  function fallbackCopy(text, done) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    try {
      if (document.execCommand("copy")) { done(); }
    } finally {
      document.body.removeChild(area);
    }
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text) { node.textContent = text; }
    return node;
  }

  function showList() {
    var list = document.getElementById("your-links-list");
    if (!list) { return; }
    var items = load();
    var empty = document.getElementById("your-links-empty");
    var forget = document.getElementById("forget-links");
    list.textContent = "";
    items.forEach(function (item) {
      var li = el("li", "link-item");
      var main = el("div", "link-main");
      var short = el("a", "short", item.shortUrl);
      short.href = item.shortUrl;
      main.appendChild(short);
      main.appendChild(el("span", "target", item.target || ""));
      li.appendChild(main);
      var actions = el("div", "link-actions");
      var stats = el("a", "small-button", "Stats");
      stats.href = "/s/" + encodeURIComponent(item.code);
      actions.appendChild(stats);
      var button = el("button", "small-button", "Copy");
      button.type = "button";
      button.dataset.copy = item.shortUrl;
      actions.appendChild(button);
      li.appendChild(actions);
      list.appendChild(li);
    });
    if (empty) { empty.hidden = items.length > 0; }
    if (forget) { forget.hidden = items.length === 0; }
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) { return; }
    var button = target.closest("[data-copy]");
    if (button) {
      event.preventDefault();
      copy(button);
    } else if (target.id === "forget-links") {
      save([]);
      showList();
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var card = document.getElementById("link-card");
    if (card && card.dataset.remember === "1") { remember(card); }
    showList();
  });
})();
