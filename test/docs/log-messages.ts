// Every `freezeguard: …` message literal in the packages' sources, for the test that keeps
// docs/troubleshooting.md complete.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** One message and where it is written. */
export interface LogMessage {
  /** The literal with each `${…}` part as `<name>` (`<…>` for an expression). */
  readonly message: string;
  /** `packages/<pkg>/src/<file>:<line>`. */
  readonly at: string;
}

const PREFIX = 'freezeguard: ';

/** `${step}` → `<step>`, `${p.name}` → `<name>`, `${a.join(', ')}` → `<…>`. */
export function placeholder(expression: string): string {
  const e = expression.trim();
  return /^[\w$.]+$/.test(e) ? `<${e.split('.').pop()}>` : '<…>';
}

/**
 * The literal starting at `text[start]` (a quote or backtick), normalised, and where it
 * ends; template parts are followed through nested braces, strings and templates.
 */
function readLiteral(text: string, start: number): { value: string; end: number } {
  const quote = text[start]!;
  let out = '';
  let i = start + 1;
  while (i < text.length && text[i] !== quote) {
    const c = text[i]!;
    if (c === '\\') {
      const next = text[i + 1]!;
      out += next === 'n' ? '\n' : next;
      i += 2;
    } else if (quote === '`' && c === '$' && text[i + 1] === '{') {
      let depth = 1;
      let j = i + 2;
      while (j < text.length && depth > 0) {
        const d = text[j]!;
        if (d === "'" || d === '"' || d === '`') j = readLiteral(text, j).end;
        else {
          if (d === '{') depth++;
          else if (d === '}') depth--;
          j++;
        }
      }
      out += placeholder(text.slice(i + 2, j - 1));
      i = j;
    } else {
      out += c;
      i++;
    }
  }
  return { value: out, end: i + 1 };
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => join(dir, f));
}

/**
 * Every literal that starts with `freezeguard: ` in `packages/*\/src`, deduplicated by
 * message (the first place it is written is kept).
 */
export function logMessages(repo: string): LogMessage[] {
  const seen = new Map<string, LogMessage>();
  const packages = join(repo, 'packages');
  for (const pkg of readdirSync(packages).sort()) {
    let files: string[];
    try {
      files = sourceFiles(join(packages, pkg, 'src')).sort();
    } catch {
      continue;
    }
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      for (const quote of ["'", '"', '`']) {
        let from = 0;
        for (;;) {
          const at = text.indexOf(`${quote}${PREFIX}`, from);
          if (at < 0) break;
          const { value, end } = readLiteral(text, at);
          from = end;
          const line = text.slice(0, at).split('\n').length;
          // A comment (TSDoc examples, explanations) quotes messages; it prints nothing.
          const lineText = text.slice(text.lastIndexOf('\n', at) + 1, at).trim();
          if (/^(\*|\/\/|\/\*)/.test(lineText)) continue;
          const where = `${file.slice(repo.length).replace(/^\//, '')}:${line}`;
          const message = value.trimEnd();
          if (!seen.has(message)) seen.set(message, { message, at: where });
        }
      }
    }
  }
  return [...seen.values()].sort((a, b) => a.message.localeCompare(b.message));
}
