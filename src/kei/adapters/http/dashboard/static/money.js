// Money as the API gives it: exact decimal dollar strings ("0.2178", "-1.50") beside
// integer micro-cents (kei/app/json_form.py). Amounts are never floats here: they are
// read into BigInt micro-cents (1 USD = 100,000,000), summed exactly, and written back
// in the API's own form. Only pixel geometry uses Number.

const SCALE = 8; // decimal places of a dollar held by one micro-cent
const UNIT = 10n ** BigInt(SCALE);

/** "12.5" -> 1250000000n; null/undefined/"" -> null. */
export function microCents(usd) {
  if (usd === null || usd === undefined || usd === "") return null;
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(String(usd));
  if (!m) throw new Error(`not a dollar amount: ${usd}`);
  const frac = (m[3] || "").padEnd(SCALE, "0").slice(0, SCALE);
  const value = BigInt(m[2]) * UNIT + BigInt(frac);
  return m[1] ? -value : value;
}

/** 1250000000n -> "12.50": at least two decimals, no trailing zeros past them. */
export function usdString(mc) {
  const negative = mc < 0n;
  const abs = negative ? -mc : mc;
  const whole = abs / UNIT;
  let frac = (abs % UNIT).toString().padStart(SCALE, "0").replace(/0+$/, "");
  frac = frac.padEnd(2, "0");
  return `${negative ? "-" : ""}${whole}.${frac}`;
}

/** "1234.5" -> "$1,234.50" (exact: the digits of the string, grouped). */
export function dollars(usd) {
  if (usd === null || usd === undefined) return "–";
  const text = typeof usd === "bigint" ? usdString(usd) : usdString(microCents(usd));
  const negative = text.startsWith("-");
  const [whole, frac] = (negative ? text.slice(1) : text).split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "−" : ""}$${grouped}.${frac}`;
}

/** BigInt micro-cents rounded to whole cents (half away from zero), for a derived
 * figure shown beside exact ones (a month's even daily share). */
export function toCents(mc) {
  const cent = 1000000n;
  const half = mc < 0n ? -cent / 2n : cent / 2n;
  return ((mc + half) / cent) * cent;
}

/** The exact sum of dollar strings, as BigInt micro-cents. */
export function sum(amounts) {
  let total = 0n;
  for (const a of amounts) total += microCents(a) ?? 0n;
  return total;
}
