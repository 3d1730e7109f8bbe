/**
 * The source tree's structural rules (issue 8, "Done when"), checked on every test
 * run so they stay true after the refactor that established them:
 * - no import cycle in src/ (type imports count: a cycle of types is still two
 *   modules that cannot be read, tested or moved apart);
 * - src/gc, src/wal, src/client and src/common import nothing from src/master;
 * - src/chunkserver imports nothing from src/client;
 * - src/master/master.ts is under 500 lines;
 * - no function in src/master is over 80 lines.
 *
 * Imports are found with a small line-anchored scanner rather than the compiler, so
 * the rules read the same way a reviewer reads the files; function lengths need a
 * real parser, and use the typescript package's.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import ts from 'typescript';

const root = path.resolve(__dirname, '../../..');
const masterLinesMax = 499;
const functionLinesMax = 80;

/** Repository-relative paths (with '/') of every .ts file under `dir`. */
function tsFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(path.join(root, rel)).sort()) {
      const child = `${rel}/${name}`;
      if (statSync(path.join(root, child)).isDirectory()) walk(child);
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(child);
    }
  };
  walk(dir);
  return out;
}

/**
 * Module specifiers a file imports: `import ... from`, `import type ... from`,
 * `export ... from`, side-effect `import '...'`, `require('...')` and `import('...')`.
 * Statements are matched from the start of a line, so specifiers quoted in comments
 * and strings are not taken for imports.
 */
export function importSpecifiers(source: string): string[] {
  const found: string[] = [];
  const statement = /^[ \t]*(?:import|export)\b[\w\s{},*$]*?\bfrom\s*(['"])([^'"\n]+)\1/gm;
  const bare = /^[ \t]*import\s*(['"])([^'"\n]+)\1/gm;
  const call = /^(?![ \t]*(?:\/\/|\/?\*)).*?\b(?:require|import)\(\s*(['"])([^'"\n]+)\1\s*\)/gm;
  for (const re of [statement, bare, call]) {
    for (const m of source.matchAll(re)) found.push(m[2]!);
  }
  return found;
}

/** The repository file a relative specifier names, or undefined for a package (or a file outside the tree). */
function resolve(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(from), specifier));
  for (const candidate of [`${base}.ts`, `${base}/index.ts`, base]) {
    const full = path.join(root, candidate);
    try {
      if (statSync(full).isFile()) return candidate;
    } catch {
      // try the next form
    }
  }
  return undefined;
}

const files = [...tsFiles('src'), ...tsFiles('cli')];
const imports = new Map<string, string[]>();
for (const file of files) {
  const targets = importSpecifiers(readFileSync(path.join(root, file), 'utf8'))
    .map((s) => resolve(file, s))
    .filter((r): r is string => r !== undefined);
  imports.set(file, [...new Set(targets)].sort());
}

/**
 * One cycle per strongly connected component of more than one module (or a
 * self-import), as a path, followed by every module of the component when there are
 * more: breaking the shortest cycle may leave another.
 */
function importCycles(graph: Map<string, string[]>): string[] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  const connect = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) components.push(component);
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) connect(v);
  return components.map((c) => cycleWithin(graph, new Set(c)));
}

/** A shortest cycle through the component's first module (by name), staying inside the component. */
function cycleWithin(graph: Map<string, string[]>, component: Set<string>): string {
  const start = [...component].sort()[0]!;
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!component.has(w)) continue;
      if (w === start) {
        const cycle = [start];
        for (let u = v; u !== start; u = previous.get(u)!) cycle.splice(1, 0, u);
        cycle.push(start);
        const all = cycle.length - 1 < component.size ? ` (all ${component.size} tangled: ${[...component].sort().join(', ')})` : '';
        return cycle.join(' → ') + all;
      }
      if (!previous.has(w)) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  throw new Error(`no cycle through ${start}`);
}

/** "a imports b" for every import from a file under one of `sources` into a file under one of `targets`. */
function importsAcross(sources: string[], targets: string[]): string[] {
  const under = (file: string, dirs: string[]): boolean => dirs.some((d) => file.startsWith(d + '/'));
  const found: string[] = [];
  for (const [file, targetsOf] of imports) {
    if (!under(file, sources)) continue;
    for (const target of targetsOf) if (under(target, targets)) found.push(`${file} imports ${target}`);
  }
  return found;
}

/** Functions (declarations, methods, accessors, constructors, and function values bound to a name) longer than `max` lines. */
function longFunctions(file: string, max: number): string[] {
  const text = readFileSync(path.join(root, file), 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const lineOf = (pos: number): number => source.getLineAndCharacterOfPosition(pos).line + 1;
  const visit = (node: ts.Node): void => {
    const name = functionName(node);
    if (name !== undefined) {
      const first = lineOf(node.getStart(source));
      const lines = lineOf(node.getEnd()) - first + 1;
      if (lines > max) found.push(`${file}:${first} ${name} is ${lines} lines`);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

function functionName(node: ts.Node): string | undefined {
  if (ts.isFunctionDeclaration(node)) return node.name?.text ?? 'default function';
  if (ts.isMethodDeclaration(node) || ts.isGetAccessor(node) || ts.isSetAccessor(node)) return node.name.getText();
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  if (ts.isArrowFunction(node) || ts.isFunctionExpression(node)) {
    const parent = node.parent;
    if ((ts.isVariableDeclaration(parent) || ts.isPropertyDeclaration(parent)) && parent.initializer === node) return parent.name.getText();
  }
  return undefined;
}

t.test('structure: the import scanner finds every form of import', async (t) => {
  const source = [
    "import a from './a';",
    "import type { B } from '../b';",
    'import {',
    '  c,',
    '  type C,',
    "} from './c';",
    "export { d } from './d';",
    "export type { E } from './e';",
    "export * from './f';",
    "import './g';",
    "const h = require('./h');",
    "const i = await import('./i');",
    "// import x from './not-a-comment';",
    " * see require('./not-a-doc')",
    "const s = 'import y from \"./not-a-string\"';",
    "const buf = Buffer.from('not-an-import');",
  ].join('\n');
  t.same(importSpecifiers(source).sort(), ['../b', './a', './c', './d', './e', './f', './g', './h', './i']);
});

t.test('structure: no import cycle in src/ (type imports included)', async (t) => {
  const cycles = importCycles(new Map([...imports].filter(([file]) => file.startsWith('src/'))));
  const message = cycles.length === 0 ? 'no import cycle' : `import cycles:\n${cycles.map((c) => '  ' + c).join('\n')}`;
  t.same(cycles, [], message);
});

t.test('structure: src/gc, src/wal, src/client and src/common import nothing from src/master', async (t) => {
  t.same(importsAcross(['src/gc', 'src/wal', 'src/client', 'src/common'], ['src/master']), []);
});

t.test('structure: src/chunkserver imports nothing from src/client', async (t) => {
  t.same(importsAcross(['src/chunkserver'], ['src/client']), []);
});

t.test('structure: src/master/master.ts is under 500 lines', async (t) => {
  const text = readFileSync(path.join(root, 'src/master/master.ts'), 'utf8');
  const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
  t.ok(lines <= masterLinesMax, `src/master/master.ts is ${lines} lines`);
});

t.test(`structure: no function in src/master is over ${functionLinesMax} lines`, async (t) => {
  const long = tsFiles('src/master').flatMap((file) => longFunctions(file, functionLinesMax));
  const message = long.length === 0 ? 'none' : `functions over ${functionLinesMax} lines:\n${long.map((l) => '  ' + l).join('\n')}`;
  t.same(long, [], message);
});

t.test('structure: the checks see the tree (a guard against a scanner that finds nothing)', async (t) => {
  t.ok(files.length > 50, `${files.length} files parsed`);
  t.ok(imports.get('src/master/meta-state.ts')?.includes('src/master/namespace.ts'), 'meta-state imports namespace');
  t.ok(imports.get('cli/gfs.ts')?.some((f) => f.startsWith('src/')), 'the CLI imports src');
  t.same(importCycles(new Map([['x', ['y']], ['y', ['z']], ['z', ['x', 'w']], ['w', []]])), ['x → y → z → x']);
  t.same(importCycles(new Map([['a', ['b']], ['b', ['a', 'c']], ['c', ['b']]])), ['a → b → a (all 3 tangled: a, b, c)']);
  t.ok(longFunctions('src/master/meta-state.ts', 5).length > 0, 'a low bound finds long functions');
});
