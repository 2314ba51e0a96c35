// Progressive enhancement: a "Copy" button next to a new token's secret. Without script
// the button stays hidden and the secret can still be selected in its read-only field.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      field.focus();
      field.select();
      var copied = function () { button.textContent = "Copied"; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(copied, function () {
          if (document.execCommand("copy")) { copied(); }
        });
      } else if (document.execCommand("copy")) {
        copied();
      }
    });
  });
});
