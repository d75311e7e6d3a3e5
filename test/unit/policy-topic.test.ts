// MQTT topic names, filters and matching, including the `$` rule [MQTT-4.7.2-1].
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isDollarTopic, topicFilterError, topicMatches, topicNameError } from '../../src/policy/index.js'

test('valid and invalid topic filters', () => {
  for (const f of ['a', 'a/b', '#', '+', 'a/#', 'a/+', '+/+', '+/b/#', '/', '/a', 'a/', 'a//b', '$SYS/#', '$iothub/twin/res/#']) {
    assert.equal(topicFilterError(f), null, f)
  }
  const bad: Array<[string, RegExp]> = [
    ['', /must not be empty/],
    ['a/#/b', /# must be the last level/],
    ['#/a', /# must be the last level/],
    ['a#', /# must occupy a whole level/],
    ['#a', /# must occupy a whole level/],
    ['a+', /\+ must occupy a whole level/],
    ['a/+b/c', /\+ must occupy a whole level/],
    ['a\u0000b', /NUL/],
  ]
  for (const [f, re] of bad) assert.match(topicFilterError(f) ?? '', re, JSON.stringify(f))
})

test('valid and invalid topic names', () => {
  for (const t of ['a', '/', 'a//b', '$SYS/x', 'devices/d/messages/events/']) assert.equal(topicNameError(t), null, t)
  for (const t of ['', 'a/+', 'a/#', 'a+b']) assert.notEqual(topicNameError(t), null, t)
})

test('filter matching table', () => {
  const cases: Array<[string, string, boolean]> = [
    ['a/b', 'a/b', true],
    ['a/b', 'a/c', false],
    ['a/+', 'a/b', true],
    ['a/+', 'a', false],
    ['a/+', 'a/b/c', false],
    ['a/+', 'a/', true], // an empty level is a level
    ['a/#', 'a', true], // `#` matches the parent too [MQTT-4.7.1-2]
    ['a/#', 'a/b/c', true],
    ['a/#', 'ab', false],
    ['#', 'a/b', true],
    ['#', '/a', true],
    ['+', '/a', false],
    ['+/a', '/a', true],
    ['+/+', 'a/b', true],
    // the `$` rule: wildcards at the first level never match `$` topics
    ['#', '$SYS/x', false],
    ['+/b', '$SYS/b', false],
    ['+', '$SYS', false],
    ['$SYS/#', '$SYS/b', true],
    ['$SYS/+', '$SYS/b', true],
    ['a/+', 'a/$b', true], // only the first level is protected
    ['a/#', 'a/$b/c', true],
  ]
  for (const [f, t, want] of cases) assert.equal(topicMatches(f, t), want, `${f} vs ${t}`)
})

test('isDollarTopic', () => {
  assert.equal(isDollarTopic('$SYS/x'), true)
  assert.equal(isDollarTopic('a/$x'), false)
  assert.equal(isDollarTopic(''), false)
})
