import { describe, expect, test } from '@jest/globals';
import { parseSet, parseSetValue } from '../../src/config/set.js';

describe('--set values are YAML scalars, {a,b} lists', () => {
  test.each<[string, unknown]>([
    ['8080', 8080],
    ['"8080"', '8080'],
    ["'8080'", '8080'],
    ['true', true],
    ['False', false],
    ['"true"', 'true'],
    ['null', null],
    ['~', null],
    ['0x1f', 31],
    ['0o17', 15],
    ['1.5', 1.5],
    ['-3', -3],
    ['1Gi', '1Gi'],
    ['', ''],
    ['hello world', 'hello world'],
    ['a,b', 'a,b'],
    ['#not a comment', '#not a comment'],
    ['key: value', 'key: value'],
    ['"a\\tb"', 'a\tb'],
    ['"unterminated', '"unterminated'],
    ['{}', []],
    ['{ }', []],
    ['{a,b,c}', ['a', 'b', 'c']],
    ['{a, b , c}', ['a', 'b', 'c']],
    ['{sh,-c,echo hi}', ['sh', '-c', 'echo hi']],
    ['{1,"2",true}', [1, '2', true]],
    ['{"a,b",c}', ['a,b', 'c']],
    ['{a\\,b,c}', ['a,b', 'c']],
    ['{single}', ['single']],
  ])('%j → %j', (raw, value) => {
    expect(parseSetValue(raw)).toEqual(value);
  });
});

describe('parseSet', () => {
  test.each<[string, { path: string[]; index?: number; value: unknown; label: string }]>([
    ['container.port=8080', { path: ['container', 'port'], value: 8080, label: '--set container.port=8080' }],
    ['image.repository=registry.local:5000/app', { path: ['image', 'repository'], value: 'registry.local:5000/app', label: '--set image.repository=registry.local:5000/app' }],
    ['init[0]=npm ci', { path: ['init'], index: 0, value: 'npm ci', label: '--set init[0]=npm ci' }],
    ['container.env.A=b=c', { path: ['container', 'env', 'A'], value: 'b=c', label: '--set container.env.A=***' }],
    ['container.env={}', { path: ['container', 'env'], value: [], label: '--set container.env=***' }],
    ['container={}', { path: ['container'], value: [], label: '--set container=***' }],
  ])('%s', (text, expected) => {
    const parsed = parseSet(text);
    expect(parsed).toEqual({ ok: true, set: expected });
  });

  test.each([
    ['storage.size', '--set storage.size', 'expected key.path=value (like --set container.port=8080)'],
    ['=x', '--set =***', 'the key before = is empty (expected key.path=value)'],
    [' =x', '--set =***', 'the key before = is empty (expected key.path=value)'],
    ['a..b=1', '--set a..b=***', '"a..b" is not a key path like container.port or init[0]'],
    ['init[0].x=1', '--set init[0].x=***', '"init[0].x" is not a key path like container.port or init[0]'],
    ['init[-1]=x', '--set init[-1]=***', '"init[-1]" is not a key path like container.port or init[0]'],
    ['container.env.TOKEN', '--set container.env… (value hidden)', 'expected key.path=value (like --set container.port=8080)'],
    ['container.env.API_TOKEN:s3cret', '--set container.env… (value hidden)', 'expected key.path=value (like --set container.port=8080)'],
    ['containr.env.API_TOKEN:s3cret', '--set … (value hidden)', 'expected key.path=value (like --set container.port=8080)'],
    ['s3cret', '--set … (value hidden)', 'expected key.path=value (like --set container.port=8080)'],
  ])('%j is malformed', (text, label, rule) => {
    expect(parseSet(text)).toEqual({ ok: false, error: { label, rule } });
  });
});

describe('a --set names its key path, and shows its value only for a known key that cannot hold a secret', () => {
  test.each([
    // known keys, not secret: the value helps and is shown
    ['container.port=http', '--set container.port=http'],
    ['health.timeout=-5s', '--set health.timeout=-5s'],
    ['storage.glusterfs.replica=4', '--set storage.glusterfs.replica=4'],
    ['init[0]=npm ci', '--set init[0]=npm ci'],
    // container.env, and what holds it
    ['container.env.API_TOKEN=s3cret', '--set container.env.API_TOKEN=***'],
    ['container.env.PORT=8080', '--set container.env.PORT=***'],
    ['container={s3cret}', '--set container=***'],
    // typos and unknown keys: a secret meant for container.env lands here
    ['containr.env.API_TOKEN=s3cret', '--set containr.env.API_TOKEN=***'],
    ['Container.env.API_TOKEN=s3cret', '--set Container.env.API_TOKEN=***'],
    ['container.evn.DB=s3cret', '--set container.evn.DB=***'],
    ['contaner.port=8080', '--set contaner.port=***'],
    ['registryPassword=s3cret', '--set registryPassword=***'],
    ['storage.glusterfs.sshKey=s3cret', '--set storage.glusterfs.sshKey=***'],
  ])('%s', (text, label) => {
    const parsed = parseSet(text);
    expect(parsed.ok).toBe(true);
    if (parsed.ok) expect(parsed.set.label).toBe(label);
  });

  test.each([
    ['a plain key path without =', 'storage.size', '--set storage.size'],
    ['a known key path followed by more', 'storage.siz:1Gi', '--set storage… (value hidden)'],
  ])('without =: %s', (_, text, label) => {
    const parsed = parseSet(text);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error.label).toBe(label);
  });

  test.each(['containr.env.API_TOKEN=s3cret', 'Container.env.API_TOKEN=s3cret', 'container.env.API_TOKEN=s3cret', 'a..b=s3cret', 'containr.env.API_TOKEN:s3cret'])(
    'the value of %j is in no label',
    (text) => {
      const parsed = parseSet(text);
      expect(parsed.ok ? parsed.set.label : parsed.error.label).not.toContain('s3cret');
    },
  );
});
