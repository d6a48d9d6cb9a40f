/* The date-range form: choosing a preset applies it at once (the preset decides from and
   to); changing a month switches the range to custom. Plain form submission: the filters stay
   in the address, and the form works without this script too. */
(function () {
  "use strict";
  var range = document.getElementById("range");
  var from = document.getElementById("from");
  var to = document.getElementById("to");
  if (!range || !from || !to) { return; }
  range.addEventListener("change", function () {
    if (range.value !== "custom") { range.form.submit(); }
  });
  function custom() { range.value = "custom"; }
  from.addEventListener("change", custom);
  to.addEventListener("change", custom);
})();
