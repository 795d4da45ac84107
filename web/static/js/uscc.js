// Unified Social Credit Code validation per GB 32100-2015, as the kiosk types.
// Same rules and messages as signaling/uscc.py (tests/test_uscc.py compares them).

/** The 31 characters of the code alphabet, in value order (no I, O, S, V, Z). */
export const ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY";
/** Weight of positions 1-17: 3**(i-1) mod 31, as tabulated in GB 32100-2015. */
export const WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
export const LENGTH = 18;

const EXCLUDED = "IOSVZ";

/** Quote one character so invisible or look-alike ones (full-width, spaces) show. */
export function describeCharacter(ch) {
  const point = ch.codePointAt(0);
  const hex = `U+${point.toString(16).toUpperCase().padStart(4, "0")}`;
  if (point > 0x20 && point < 0x7f) return `'${ch}'`;
  if (point <= 0x20 || (point >= 0x7f && point <= 0xa0)) return hex;
  return `'${ch}' (${hex})`;
}

function characterError(code) {
  const chars = Array.from(code);
  for (let i = 0; i < chars.length; i += 1) {
    const ch = chars[i];
    const position = i + 1;
    if (ALPHABET.includes(ch)) continue;
    if (EXCLUDED.includes(ch)) {
      return `character ${position} is ${describeCharacter(ch)}: the letters I, O, S, V and Z ` +
        "are never used in a unified social credit code";
    }
    if (ch.length === 1 && ALPHABET.includes(ch.toUpperCase())) {
      return `character ${position} is ${describeCharacter(ch)}: letters must be upper case`;
    }
    return `character ${position} is ${describeCharacter(ch)}: only digits 0-9 and upper-case ` +
      "letters other than I, O, S, V, Z are allowed";
  }
  return null;
}

/** Check character (position 18) for the first 17 characters; throws on bad input. */
export function checkCharacter(first17) {
  const chars = Array.from(first17);
  if (chars.length !== LENGTH - 1) {
    throw new RangeError(`expected 17 characters, got ${chars.length}`);
  }
  const problem = characterError(first17);
  if (problem !== null) throw new RangeError(problem);
  let total = 0;
  chars.forEach((ch, i) => { total += ALPHABET.indexOf(ch) * WEIGHTS[i]; });
  return ALPHABET[(31 - (total % 31)) % 31];
}

/** A message naming the first rule the code breaks, or null when it is valid. */
export function usccError(code) {
  const chars = Array.from(code);
  if (chars.length !== LENGTH) {
    return `a unified social credit code has 18 characters, this one has ${chars.length}`;
  }
  const problem = characterError(code);
  if (problem !== null) return problem;
  for (let position = 3; position <= 8; position += 1) {
    const ch = chars[position - 1];
    if (ch < "0" || ch > "9") {
      return `character ${position} is ${describeCharacter(ch)}: characters 3-8 are the ` +
        "administrative division code and must be digits";
    }
  }
  const expected = checkCharacter(chars.slice(0, 17).join(""));
  if (chars[17] !== expected) {
    return `check character (18th) should be '${expected}', not ${describeCharacter(chars[17])}`;
  }
  return null;
}
