// Days and opening times as the catalogs write them ("12月7日 周一 09:00"), in the
// configured time zone: the weekday is a catalog word, not the browser's.

const WEEKDAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/** Local parts of an instant (or a YYYY-MM-DD day) in time zone `timezone`. */
function parts(iso, timezone) {
  const day = /^\d{4}-\d{2}-\d{2}$/.test(iso);
  const date = new Date(day ? `${iso}T12:00:00Z` : iso);
  const format = new Intl.DateTimeFormat("en-US", {
    timeZone: day ? "UTC" : timezone, month: "numeric", day: "numeric", weekday: "short",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  });
  const found = Object.fromEntries(format.formatToParts(date).map((p) => [p.type, p.value]));
  return { ...found, weekday: WEEKDAYS.indexOf(found.weekday) };
}

/** "12月7日 周一" / "Mon 12/7" for a day or the day of an instant. */
export function dayLabel(i18n, iso) {
  const p = parts(iso, i18n.timezone);
  return i18n.t("day.label", { month: p.month, day: p.day, weekday: i18n.t(`day.weekday.${p.weekday}`) });
}

/** "HH:MM" of an instant in the configured time zone. */
export function timeLabel(i18n, iso) {
  const p = parts(iso, i18n.timezone);
  return `${p.hour}:${p.minute}`;
}

/** When something opens: "12月7日 周一 09:00". */
export function openingLabel(i18n, iso) {
  return `${dayLabel(i18n, iso)} ${timeLabel(i18n, iso)}`;
}
