/**
 * The console's own script, served as /assets/console.js (no inline script: the
 * Content-Security-Policy allows only files from this server). It only improves
 * the page: a message dropped anywhere on the drop zone becomes the file input's
 * file (the input alone accepts drops too), and the chosen file's name is shown;
 * a link marked data-continue (the way on to the company's sign-in service after
 * signing out) is followed at once. Every form and link works without it.
 */
export const CONSOLE_JS = `
(function () {
  'use strict';
  function wire(zone) {
    var input = zone.querySelector('input[type="file"]');
    var name = zone.querySelector('[data-file-name]');
    if (!input) return;
    function show() { if (name) name.textContent = input.files && input.files[0] ? input.files[0].name : ''; }
    input.addEventListener('change', show);
    zone.addEventListener('dragover', function (e) { e.preventDefault(); zone.classList.add('over'); });
    zone.addEventListener('dragleave', function () { zone.classList.remove('over'); });
    zone.addEventListener('drop', function (e) {
      e.preventDefault();
      zone.classList.remove('over');
      if (e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files.length) { input.files = e.dataTransfer.files; show(); }
    });
  }
  function init() {
    document.querySelectorAll('.dropzone').forEach(wire);
    var next = document.querySelector('a[data-continue]');
    if (next) window.location.replace(next.href);
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init); else init();
})();
`;
