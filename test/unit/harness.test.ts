import { describe, expect, test } from '@jest/globals';
import { requireProgram } from '../harness/index.js';

describe('test harness', () => {
  test('a missing service fails loudly with the command that installs it', async () => {
    await expect(requireProgram('gkube-no-such-daemon', 'gkube-no-such-package')).rejects.toThrow(
      /gkube-no-such-daemon is not installed.*apt-get install -y gkube-no-such-package/,
    );
  });
});
