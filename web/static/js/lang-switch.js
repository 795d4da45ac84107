// The staff pages' language switch (templates/lang_switch.html), on every staff page.

import { setUpLanguageSwitch } from "./i18n.js";

setUpLanguageSwitch();
