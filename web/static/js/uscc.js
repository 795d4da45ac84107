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

/** The first bad character as {rule, position, char}: rule excluded | lowercase | alphabet. */
function characterProblem(code) {
  const chars = Array.from(code);
  for (let i = 0; i < chars.length; i += 1) {
    const ch = chars[i];
    const position = i + 1;
    if (ALPHABET.includes(ch)) continue;
    if (EXCLUDED.includes(ch)) return { rule: "excluded", position, char: describeCharacter(ch) };
    if (ch.length === 1 && ALPHABET.includes(ch.toUpperCase())) {
      return { rule: "lowercase", position, char: describeCharacter(ch) };
    }
    return { rule: "alphabet", position, char: describeCharacter(ch) };
  }
  return null;
}

const ENGLISH = {
  length: (p) => `a unified social credit code has 18 characters, this one has ${p.length}`,
  excluded: (p) => `character ${p.position} is ${p.char}: the letters I, O, S, V and Z ` +
    "are never used in a unified social credit code",
  lowercase: (p) => `character ${p.position} is ${p.char}: letters must be upper case`,
  alphabet: (p) => `character ${p.position} is ${p.char}: only digits 0-9 and upper-case ` +
    "letters other than I, O, S, V, Z are allowed",
  division: (p) => `character ${p.position} is ${p.char}: characters 3-8 are the ` +
    "administrative division code and must be digits",
  check: (p) => `check character (18th) should be '${p.expected}', not ${p.char}`,
};

function characterError(code) {
  const problem = characterProblem(code);
  return problem && ENGLISH[problem.rule](problem);
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

/** The first rule the code breaks as {rule, ...params} (pages translate "uscc.rule.<rule>"),
 * or null when it is valid. */
export function usccProblem(code) {
  const chars = Array.from(code);
  if (chars.length !== LENGTH) return { rule: "length", length: chars.length };
  const problem = characterProblem(code);
  if (problem !== null) return problem;
  for (let position = 3; position <= 8; position += 1) {
    const ch = chars[position - 1];
    if (ch < "0" || ch > "9") return { rule: "division", position, char: describeCharacter(ch) };
  }
  const expected = checkCharacter(chars.slice(0, 17).join(""));
  if (chars[17] !== expected) return { rule: "check", expected, char: describeCharacter(chars[17]) };
  return null;
}

/** A message naming the first rule the code breaks, or null when it is valid (English, as
 * signaling/uscc.py words it for developers). */
export function usccError(code) {
  const problem = usccProblem(code);
  return problem && ENGLISH[problem.rule](problem);
}
