import { describe, expect, test } from '@jest/globals';
import { redact } from '../../src/output/redact.js';
import { reportError } from '../../src/output/errors.js';
import { GkubeError } from '../../src/errors.js';

describe('redact', () => {
  test.each([
    ['https://jenkins:s3cret@git.example.com/team/app.git', 'https://***@git.example.com/team/app.git'],
    ['http://token@registry.local/v2/', 'http://***@registry.local/v2/'],
    ['Authorization: Bearer abc.def.ghi', 'Authorization: Bearer ***'],
    ['url?token=abc123&x=1', 'url?token=***&x=1'],
    ['password=hunter2 next', 'password=*** next'],
    ['https://git.example.com/team/app.git', 'https://git.example.com/team/app.git'],
  ])('%s', (input, expected) => {
    expect(redact(input)).toBe(expected);
  });
});

describe('reportError', () => {
  test('prints message and hint with secrets masked and returns the error exit code', () => {
    let err = '';
    const streams = { stdout: { write: () => true }, stderr: { write: (s: string) => (err += s) } };
    const code = reportError(
      new GkubeError('DEPENDENCY_UNREACHABLE', 'etcd at https://root:pw@10.0.0.1:2379 did not answer within 10s', { hint: 'check GKUBE_ETCD_ENDPOINTS' }),
      streams,
      false,
    );
    expect(code).toBe(4);
    expect(err).toBe('error: etcd at https://***@10.0.0.1:2379 did not answer within 10s\nhint: check GKUBE_ETCD_ENDPOINTS\n');
  });

  test('an unexpected error is reported as internal, exit 1', () => {
    let err = '';
    const code = reportError(new TypeError('x is undefined'), { stdout: { write: () => true }, stderr: { write: (s: string) => (err += s) } }, false);
    expect(code).toBe(1);
    expect(err).toMatch(/^error: internal error: x is undefined\nhint: rerun with --verbose/);
  });
});
