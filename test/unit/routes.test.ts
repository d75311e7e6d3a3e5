import { test } from 'node:test'
import assert from 'node:assert/strict'
import { InvalidDocumentError } from '../../src/errors.js'
import {
  RouteSyntaxError,
  compileRoutes,
  formatSink,
  formatSource,
  matchRoutes,
  parseRoute,
  routeMessage,
  type RoutableMessage,
  type Route,
} from '../../src/routes/index.js'

function msg(over: Partial<RoutableMessage> = {}): RoutableMessage {
  return { deviceId: 'edge1', properties: {}, systemProperties: {}, body: '', ...over }
}

function routes(...texts: string[]): Route[] {
  return texts.map((t) => parseRoute(t))
}

// ---------------------------------------------------------------------------------------------
// Parsing: sources, sinks, keywords

test("parseRoute: the seed's route FROM /messages/* INTO $upstream", () => {
  assert.deepEqual(parseRoute('FROM /messages/* INTO $upstream'), {
    text: 'FROM /messages/* INTO $upstream',
    source: { kind: 'messages' },
    sink: { kind: 'upstream' },
  })
})

const sources: Array<[string, Route['source']]> = [
  ['/*', { kind: 'all' }],
  ['/messages/*', { kind: 'messages' }],
  ['/messages/modules/*', { kind: 'modules' }],
  ['/messages/modules/sensor/*', { kind: 'module', moduleId: 'sensor' }],
  ['/messages/modules/sensor/outputs/*', { kind: 'module-outputs', moduleId: 'sensor' }],
  ['/messages/modules/sensor/outputs/temperatureOutput', { kind: 'module-output', moduleId: 'sensor', outputName: 'temperatureOutput' }],
  ['/messages/modules/my-module.v2/outputs/out_1', { kind: 'module-output', moduleId: 'my-module.v2', outputName: 'out_1' }],
]
for (const [src, expected] of sources) {
  test(`parseRoute: source ${src}`, () => {
    const r = parseRoute(`FROM ${src} INTO $upstream`)
    assert.deepEqual(r.source, expected)
    assert.equal(formatSource(r.source), src)
  })
}

test('parseRoute: BrokeredEndpoint sink, either quote, any keyword case, SELECT * prefix', () => {
  const want = { kind: 'module-input', moduleId: 'filter', inputName: 'in1' }
  assert.deepEqual(parseRoute('FROM /messages/* INTO BrokeredEndpoint("/modules/filter/inputs/in1")').sink, want)
  assert.deepEqual(parseRoute("from /messages/* into brokeredEndpoint('/modules/filter/inputs/in1')").sink, want)
  assert.deepEqual(parseRoute('  From /messages/*   Into BrokeredEndpoint ( "/modules/filter/inputs/in1" )  ').sink, want)
  assert.deepEqual(parseRoute('SELECT * FROM /messages/* INTO $upstream').sink, { kind: 'upstream' })
  assert.deepEqual(parseRoute('FROM /messages/* INTO $Upstream').sink, { kind: 'upstream' })
  assert.equal(formatSink(want as Route['sink']), 'BrokeredEndpoint("/modules/filter/inputs/in1")')
})

test('parseRoute: no space needed between WHERE and a parenthesis', () => {
  const r = parseRoute("FROM /messages/* WHERE(a = '1')INTO $upstream")
  assert.deepEqual(routeMessage([r], msg({ properties: { a: '1' } })), [{ kind: 'upstream' }])
  assert.deepEqual(routeMessage([r], msg({ properties: { a: '2' } })), [])
})

test('parseRoute: WHERE keywords and operators are case-insensitive', () => {
  const r = parseRoute("FROM /* where a = 1 and not (b <> 'x' Or c != 2) INTO $upstream")
  assert.ok(r.condition !== undefined)
  assert.equal(r.condition.type, 'and')
})

// ---------------------------------------------------------------------------------------------
// Parse errors: each is an InvalidDocumentError naming what was wrong and the column

const errors: Array<[string, string, RegExp, number]> = [
  ['bad source', 'FROM /telemetry/* INTO $upstream', /unknown source "\/telemetry\/\*"; supported sources: \/\*, \/messages\/\*/, 6],
  ['source without /*', 'FROM /messages/modules/sensor INTO $upstream', /unknown source "\/messages\/modules\/sensor"/, 6],
  ['source not starting with /', 'FROM messages/* INTO $upstream', /must start with "\/"/, 6],
  ['missing source', 'FROM', /missing source after FROM/, 5],
  ['bad sink', 'FROM /messages/* INTO $downstream', /unknown sink "\$downstream"; supported sinks: \$upstream, BrokeredEndpoint/, 23],
  ['bad sink function', 'FROM /messages/* INTO Endpoint("/modules/a/inputs/b")', /unknown sink function "Endpoint"/, 23],
  ['bad BrokeredEndpoint path', 'FROM /messages/* INTO BrokeredEndpoint("/modules/a/outputs/b")', /invalid BrokeredEndpoint "\/modules\/a\/outputs\/b": expected "\/modules\/<moduleId>\/inputs\/<input>"/, 40],
  ['unquoted BrokeredEndpoint', 'FROM /messages/* INTO BrokeredEndpoint(/modules/a/inputs/b)', /unexpected character '\/'/, 40],
  ['missing sink', 'FROM /messages/* INTO', /missing sink after INTO/, 22],
  ['missing INTO', 'FROM /messages/*', /missing INTO/, 17],
  ['not FROM', 'SEND /messages/* INTO $upstream', /expected FROM, found "SEND"/, 1],
  ['empty route', '   ', /empty route/, 4],
  ['junk after sink', 'FROM /messages/* INTO $upstream now', /unexpected text after the sink: "now"/, 33],
  ['unbalanced parens: unclosed', 'FROM /* WHERE (a = 1 AND (b = 2) INTO $upstream', /unbalanced parentheses: '\(' at column 15 is not closed \(found 'INTO'\)/, 34],
  ['unbalanced parens: extra )', 'FROM /* WHERE a = 1) INTO $upstream', /unbalanced parentheses: '\)' without a matching '\('/, 20],
  ['unbalanced parens: leading )', 'FROM /* WHERE ) INTO $upstream', /unbalanced parentheses/, 15],
  ['unknown function', 'FROM /* WHERE IS_DEFINDE(a) INTO $upstream', /unknown function 'IS_DEFINDE'; supported: IS_DEFINED, /, 15],
  ['function arity', 'FROM /* WHERE STARTS_WITH(a) INTO $upstream', /STARTS_WITH takes 2 argument\(s\), got 1/, 15],
  ['IS_DEFINED of a literal', "FROM /* WHERE IS_DEFINED('a') INTO $upstream", /IS_DEFINED expects a property name/, 26],
  ['unknown system property', "FROM /* WHERE $contenttype2 = 'x' INTO $upstream", /unknown system property '\$contenttype2'; supported: \$messageId/, 15],
  ['unterminated string', "FROM /* WHERE a = 'x INTO $upstream", /unterminated string/, 19],
  ['empty WHERE', 'FROM /* WHERE INTO $upstream', /empty condition after WHERE/, 15],
  ['dangling operator', 'FROM /* WHERE a = INTO $upstream', /found keyword INTO/, 19],
  ['chained comparison', 'FROM /* WHERE 1 < a < 3 INTO $upstream', /comparisons do not chain/, 21],
  ['missing operator between terms', "FROM /* WHERE a 'b' INTO $upstream", /expected INTO or an operator, found string 'b'/, 17],
  ['bad character', 'FROM /* WHERE a = #1 INTO $upstream', /unexpected character '#'/, 19],
]
for (const [name, text, pattern, column] of errors) {
  test(`parseRoute error: ${name}`, () => {
    assert.throws(
      () => parseRoute(text),
      (err: unknown) => {
        assert.ok(err instanceof InvalidDocumentError, 'an InvalidDocumentError')
        assert.ok(err instanceof RouteSyntaxError)
        assert.match(err.message, pattern)
        assert.equal(err.column, column, `column in: ${err.message}`)
        assert.match(err.message, new RegExp(`\\(column ${column}\\)$`))
        assert.equal(err.exitCode, 2)
        return true
      },
    )
  })
}

// ---------------------------------------------------------------------------------------------
// compileRoutes

test('compileRoutes: collects every error with its path, keeps the good routes', () => {
  const { issues, routes: rs } = compileRoutes({
    upstream: 'FROM /messages/* INTO $upstream',
    bad1: 'FROM /nope INTO $upstream',
    toFilter: { route: 'FROM /messages/modules/sensor/outputs/* INTO BrokeredEndpoint("/modules/filter/inputs/in1")', priority: 1, timeToLiveSecs: 60 },
    bad2: 'FROM /messages/* INTO BrokeredEndpoint("/x")',
    notString: 42,
    badObject: { priority: 12 },
  })
  assert.deepEqual(
    rs.map((r) => [r.name, r.priority, r.timeToLiveSecs]),
    [
      ['upstream', undefined, undefined],
      ['toFilter', 1, 60],
    ],
  )
  assert.deepEqual(
    issues.map((i) => i.path),
    ['routes.bad1', 'routes.bad2', 'routes.notString', 'routes.badObject.priority', 'routes.badObject.route'],
  )
  assert.match(issues[0]?.message ?? '', /unknown source "\/nope".*\(column 6\)/)
  assert.match(issues[1]?.message ?? '', /invalid BrokeredEndpoint "\/x"/)
})

test('compileRoutes: an empty routes object compiles to nothing', () => {
  assert.deepEqual(compileRoutes({}), { issues: [], routes: [] })
})

// ---------------------------------------------------------------------------------------------
// Source matching

test('sources: a plain device matches /* and /messages/* only', () => {
  const all = routes(
    'FROM /* INTO BrokeredEndpoint("/modules/a/inputs/all")',
    'FROM /messages/* INTO BrokeredEndpoint("/modules/a/inputs/messages")',
    'FROM /messages/modules/* INTO BrokeredEndpoint("/modules/a/inputs/modules")',
    'FROM /messages/modules/dev/* INTO BrokeredEndpoint("/modules/a/inputs/module")',
  )
  const sinks = routeMessage(all, msg({ deviceId: 'dev' }))
  assert.deepEqual(
    sinks.map((s) => (s.kind === 'module-input' ? s.inputName : s.kind)),
    ['all', 'messages'],
  )
})

test('sources: module messages, with and without an output', () => {
  const all = routes(
    'FROM /messages/modules/* INTO BrokeredEndpoint("/modules/x/inputs/anyModule")',
    'FROM /messages/modules/sensor/* INTO BrokeredEndpoint("/modules/x/inputs/sensorAny")',
    'FROM /messages/modules/sensor/outputs/* INTO BrokeredEndpoint("/modules/x/inputs/sensorOutputs")',
    'FROM /messages/modules/sensor/outputs/temp INTO BrokeredEndpoint("/modules/x/inputs/sensorTemp")',
    'FROM /messages/modules/other/* INTO BrokeredEndpoint("/modules/x/inputs/other")',
  )
  const names = (m: RoutableMessage): string[] => routeMessage(all, m).map((s) => (s.kind === 'module-input' ? s.inputName : s.kind))
  assert.deepEqual(names(msg({ moduleId: 'sensor', outputName: 'temp' })), ['anyModule', 'sensorAny', 'sensorOutputs', 'sensorTemp'])
  assert.deepEqual(names(msg({ moduleId: 'sensor', systemProperties: { outputName: 'hum' } })), ['anyModule', 'sensorAny', 'sensorOutputs'])
  assert.deepEqual(names(msg({ moduleId: 'sensor' })), ['anyModule', 'sensorAny'])
  assert.deepEqual(names(msg({ moduleId: 'other', outputName: 'temp' })), ['anyModule', 'other'])
  assert.deepEqual(names(msg()), [])
})

test('routeMessage: identical sinks are deduplicated, order kept', () => {
  const all = routes(
    'FROM /messages/* INTO $upstream',
    'FROM /* INTO $upstream',
    'FROM /* INTO BrokeredEndpoint("/modules/f/inputs/i")',
    "FROM /messages/* WHERE a = '1' INTO BrokeredEndpoint(\"/modules/f/inputs/i\")",
  )
  assert.deepEqual(routeMessage(all, msg({ properties: { a: '1' } })), [
    { kind: 'upstream' },
    { kind: 'module-input', moduleId: 'f', inputName: 'i' },
  ])
  assert.equal(matchRoutes(all, msg({ properties: { a: '1' } })).length, 4)
})

// ---------------------------------------------------------------------------------------------
// Conditions

test('WHERE: the brief example selects only matching messages', () => {
  const r = routes(
    `FROM /messages/modules/sensor/outputs/* WHERE temperature > 30 AND $contentType = 'application/json' INTO BrokeredEndpoint("/modules/filter/inputs/in1")`,
  )
  const base = { moduleId: 'sensor', outputName: 'out1' }
  const json = { contentType: 'application/json', contentEncoding: 'utf-8' }
  const hit = msg({ ...base, properties: { temperature: '35' }, systemProperties: json })
  assert.deepEqual(routeMessage(r, hit), [{ kind: 'module-input', moduleId: 'filter', inputName: 'in1' }])
  assert.deepEqual(routeMessage(r, msg({ ...base, properties: { temperature: '30' }, systemProperties: json })), [], 'not > 30')
  assert.deepEqual(routeMessage(r, msg({ ...base, properties: { temperature: '35' }, systemProperties: { contentType: 'text/plain' } })), [], 'wrong content type')
  assert.deepEqual(routeMessage(r, msg({ ...base, properties: {}, systemProperties: json })), [], 'temperature missing → undefined → not routed')
  assert.deepEqual(routeMessage(r, msg({ ...base, properties: { temperature: 'hot' }, systemProperties: json })), [], 'non-numeric')
  assert.deepEqual(routeMessage(r, msg({ moduleId: 'sensor', properties: { temperature: '35' }, systemProperties: json })), [], 'no output')
  assert.deepEqual(routeMessage(r, msg({ ...base, moduleId: 'other', properties: { temperature: '35' }, systemProperties: json })), [], 'other module')
})

function holds(cond: string, m: RoutableMessage): boolean {
  return routeMessage(routes(`FROM /* WHERE ${cond} INTO $upstream`), m).length === 1
}

const conditionCases: Array<[string, Partial<RoutableMessage>, boolean]> = [
  // comparisons
  ["a = 'x'", { properties: { a: 'x' } }, true],
  ["a = 'X'", { properties: { a: 'x' } }, false],
  ["a <> 'x'", { properties: { a: 'y' } }, true],
  ["a != 'x'", { properties: { a: 'x' } }, false],
  ["a <> 'x'", { properties: {} }, false], // undefined is not "not equal"
  ['n < 10', { properties: { n: '9.5' } }, true],
  ['n <= 10', { properties: { n: '10' } }, true],
  ['n >= 10', { properties: { n: '9' } }, false],
  ['n = 1e3', { properties: { n: '1000' } }, true],
  ['n > -5', { properties: { n: '-4' } }, true],
  ['n = 0x10', { properties: { n: '16' } }, true],
  ["s < 'b'", { properties: { s: 'a' } }, true],
  ['flag = true', { properties: { flag: 'true' } }, true],
  ['flag = false', { properties: { flag: 'true' } }, false],
  ['Temperature > 30', { properties: { temperature: '31' } }, true], // case-insensitive app property names
  ['"double" = "double"', {}, true],
  ["'it\\'s' = \"it's\"", {}, true], // backslash escapes, as GrammarLexer.g4
  // logic, precedence, three-valued
  ["a = '1' OR b = '1'", { properties: { b: '1' } }, true],
  ["a = '1' AND b = '1'", { properties: { a: '1' } }, false],
  ["NOT a = '1'", { properties: { a: '2' } }, true],
  ["NOT a = '1'", { properties: {} }, false], // NOT undefined is undefined
  ["a = '1' OR b = '1' AND c = '1'", { properties: { a: '1' } }, true], // AND binds tighter
  ["(a = '1' OR b = '1') AND c = '1'", { properties: { a: '1' } }, false],
  ['missing = 1 OR true', {}, true],
  ['missing = 1 AND false', {}, false],
  ['true', {}, true],
  ['false', {}, false],
  // system properties
  ["$connectionDeviceId = 'edge1'", {}, true],
  ["$connectionModuleId = 'sensor'", { moduleId: 'sensor' }, true],
  ['IS_DEFINED($connectionModuleId)', {}, false],
  ["$outputName = 'o1'", { moduleId: 'm', outputName: 'o1' }, true],
  ["$messageId = 'm-1' AND $correlationId = 'c-1'", { systemProperties: { messageId: 'm-1', correlationId: 'c-1' } }, true],
  ["$contentEncoding = 'utf-8'", { systemProperties: { contentEncoding: 'utf-8' } }, true],
  ["$ContentType = 'application/json'", { systemProperties: { contentType: 'application/json' } }, true],
  ["$to = '/x'", { systemProperties: { to: '/x' } }, true],
  ["$userId = 'u'", { systemProperties: { userId: 'u' } }, true],
  // functions
  ['IS_DEFINED(a)', { properties: { a: '' } }, true],
  ['IS_DEFINED(a)', {}, false],
  ['NOT IS_DEFINED(a)', {}, true],
  ['is_defined($messageId)', { systemProperties: { messageId: 'x' } }, true],
  ["STARTS_WITH(a, 'tem')", { properties: { a: 'temp' } }, true],
  ["ENDS_WITH(a, 'mp')", { properties: { a: 'temp' } }, true],
  ["CONTAINS(a, 'em')", { properties: { a: 'temp' } }, true],
  ["LOWER(a) = 'temp'", { properties: { a: 'TeMp' } }, true],
  ["UPPER(a) = 'TEMP'", { properties: { a: 'temp' } }, true],
  ['LENGTH(a) = 4', { properties: { a: 'temp' } }, true],
  ["CONCAT(a, '-', b) = 'x-y'", { properties: { a: 'x', b: 'y' } }, true],
  ['AS_NUMBER(a) > 2', { properties: { a: '3' } }, true],
  ['IS_STRING(a)', { properties: { a: '3' } }, true],
  ['IS_NUMBER(a)', { properties: { a: '3' } }, false],
  ['IS_NULL(null)', {}, true],
  // body (JSON with contentType application/json)
  [
    '$body.Weather.Temperature > 40',
    { body: '{"Weather":{"Temperature":50}}', systemProperties: { contentType: 'application/json', contentEncoding: 'utf-8' } },
    true,
  ],
  ['$body.Weather.Temperature > 40', { body: '{"Weather":{"Temperature":50}}', systemProperties: { contentType: 'text/plain' } }, false],
  ['$body.missing.deep = 1', { body: Buffer.from('{"a":1}'), systemProperties: { contentType: 'application/json' } }, false],
  ['$body.a = 1', { body: Buffer.from('{"a":1}'), systemProperties: { contentType: 'application/json' } }, true],
  ['$body.a = 1', { body: 'not json', systemProperties: { contentType: 'application/json' } }, false],
  // comments are ignored, as in GrammarLexer.g4
  ["a = 'x' /* only x */", { properties: { a: 'x' } }, true],
]
for (const [cond, over, expected] of conditionCases) {
  test(`WHERE ${cond} → ${expected}`, () => {
    assert.equal(holds(cond, msg(over)), expected)
  })
}

// ---------------------------------------------------------------------------------------------
// Robustness (fast-check): any text either parses or fails with a RouteSyntaxError

import fc from 'fast-check'

test('property: parseRoute only ever throws RouteSyntaxError, with a column inside the text', () => {
  const piece = fc.oneof(
    fc.constantFrom('FROM', 'WHERE', 'INTO', 'AND', 'OR', 'NOT', '(', ')', '/messages/*', '/*', '$upstream', 'BrokeredEndpoint(', '"/modules/a/inputs/b"', "'x'", '=', '<>', '<', '>=', 'IS_DEFINED', '$contentType', '$body.a', 'a', '1', '-2.5e3', ',', '/*c*/', '"', "'", '\\'),
    fc.string({ unit: 'binary', maxLength: 4 }),
  )
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 14 }), (pieces) => {
      const text = pieces.join(' ')
      try {
        const r = parseRoute(text)
        routeMessage([r], msg({ properties: { a: '1' }, body: '{"a":1}', systemProperties: { contentType: 'application/json' } }))
      } catch (err) {
        assert.ok(err instanceof RouteSyntaxError, `unexpected ${String(err)} for ${JSON.stringify(text)}`)
        assert.ok(err.column >= 1 && err.column <= text.length + 1, `column ${err.column} for ${JSON.stringify(text)}`)
      }
    }),
    { numRuns: 2000 },
  )
})

test('a hostile, deeply nested condition is a 400-style error, not a stack overflow', () => {
  const deep = `FROM /* WHERE ${'('.repeat(20000)}a = 1${')'.repeat(20000)} INTO $upstream`
  assert.throws(() => parseRoute(deep), /nested more than 64 levels deep/)
  assert.throws(() => parseRoute(`FROM /* WHERE ${'NOT '.repeat(20000)}true INTO $upstream`), /nested more than 64 levels deep/)
  const wide = `FROM /* WHERE ${Array.from({ length: 3000 }, () => "a = '1'").join(' AND ')} INTO $upstream`
  assert.deepEqual(routeMessage([parseRoute(wide)], msg({ properties: { a: '1' } })), [{ kind: 'upstream' }])
})
