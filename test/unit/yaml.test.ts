/**
 * `monitor -o table|tsv`: az prints every non-JSON output of monitor-events as PyYAML's
 * `safe_dump(event, default_flow_style=False)`; src/cli/yaml.ts writes the same text. The expected
 * text below is PyYAML 6's output for the same event.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { toYaml } from '../../src/cli/yaml.js'

const EVENT = {
  event: {
    origin: 'sensor',
    module: '',
    interface: 'dtmi:com:example:Thermostat;1',
    component: '',
    properties: {
      system: {
        content_type: 'application/json',
        message_id: 'm-1',
        'iothub-enqueuedtime': '2026-12-02T15:44:22.934Z',
      },
      application: {
        alert: 'true',
        level: '3',
        note: 'a: b',
        empty: '',
        quote: "it's",
        hash: '#x',
        yes: 'no',
        num: '1.5',
        neg: '-1',
      },
    },
    annotations: {
      'iothub-connection-device-id': 'sensor',
      'iothub-enqueuedtime': 1764690262934,
      'x-opt-enqueued-time': 1764690262934,
      'dt-dataschema': 'dtmi:com:example:Thermostat;1',
    },
    payload: {
      temperature: 21.5,
      ok: true,
      none: null,
      list: [1, 'two', {
        b: 2,
        a: [3, []],
      }, [4, 5]],
      obj: {},
      dash: '- x',
      colon: 'end:',
      ws: ' lead',
    },
  },
}

test("an az monitor event as YAML: PyYAML's text, byte for byte (sorted keys, indentless sequences, quoting)", () => {
  const expected = [
    'event:',
    '  annotations:',
    '    dt-dataschema: dtmi:com:example:Thermostat;1',
    '    iothub-connection-device-id: sensor',
    '    iothub-enqueuedtime: 1764690262934',
    '    x-opt-enqueued-time: 1764690262934',
    '  component: \'\'',
    '  interface: dtmi:com:example:Thermostat;1',
    '  module: \'\'',
    '  origin: sensor',
    '  payload:',
    '    colon: \'end:\'',
    '    dash: \'- x\'',
    '    list:',
    '    - 1',
    '    - two',
    '    - a:',
    '      - 3',
    '      - []',
    '      b: 2',
    '    - - 4',
    '      - 5',
    '    none: null',
    '    obj: {}',
    '    ok: true',
    '    temperature: 21.5',
    '    ws: \' lead\'',
    '  properties:',
    '    application:',
    '      alert: \'true\'',
    '      empty: \'\'',
    '      hash: \'#x\'',
    '      level: \'3\'',
    '      neg: \'-1\'',
    '      note: \'a: b\'',
    '      num: \'1.5\'',
    '      quote: it\'s',
    '      \'yes\': \'no\'',
    '    system:',
    '      content_type: application/json',
    '      iothub-enqueuedtime: \'2026-12-02T15:44:22.934Z\'',
    '      message_id: m-1',
  ].join('\n') + '\n'
  assert.equal(toYaml(EVENT), expected)
})

test('YAML: strings with line breaks are double-quoted; empty containers and top-level scalars', () => {
  assert.equal(toYaml({ txt: 'line1\nline2' }), 'txt: "line1\\nline2"\n')
  assert.equal(toYaml({ a: [], b: {} }), 'a: []\nb: {}\n')
  assert.equal(toYaml([{ x: 1 }, 'y']), '- x: 1\n- y\n')
  assert.equal(toYaml('null'), "'null'\n")
  // Quoting as PyYAML decides it (each checked against PyYAML 6).
  const quoted = ['=', '<<', '1_000', '0x1F', '1:30', '.5', '1.0e+5', '~', '-', ',x', '[x', '#x', '&x', '*x', '|x', '>x', '@x', '%x', '!x', '`x', '? x', '- x', 'x #y', 'x:', ' x', 'x ']
  for (const v of quoted) assert.equal(toYaml({ v }), `v: '${v}'\n`, v)
  for (const v of ['y', 'n', '1e5', 'a -b', 'key:x', '?x', 'x?', '-x', ':x', 'x#y', '1.2.3']) assert.equal(toYaml({ v }), `v: ${v}\n`, v)
  assert.equal(toYaml({ v: "'x" }), "v: '''x'\n")
  assert.equal(toYaml({ v: 'x\ty' }), 'v: "x\\ty"\n')
})
