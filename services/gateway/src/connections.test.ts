import { describe, expect, it } from 'vitest';
import { addressKey } from './connections.js';

/** docs/security.md #34: what the per-address connection cap counts a client under. */
describe('addressKey', () => {
  it('counts an IPv4 address as itself, and an IPv4-mapped IPv6 address as that IPv4 address', () => {
    expect(addressKey('192.0.2.7')).toBe('192.0.2.7');
    expect(addressKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(addressKey('::FFFF:127.0.0.5')).toBe('127.0.0.5');
  });

  it('counts every IPv6 address of one /64 under one key, and another /64 under another', () => {
    const key = addressKey('2001:db8:1:2::1');
    expect(key).toBe('2001:db8:1:2::/64');
    for (const a of ['2001:db8:1:2:ffff:ffff:ffff:ffff', '2001:0db8:0001:0002:0:0:0:2', '2001:DB8:1:2:a:b:c:d', '2001:db8:1:2::9%eth0']) {
      expect(addressKey(a), a).toBe(key);
    }
    expect(addressKey('2001:db8:1:3::1')).toBe('2001:db8:1:3::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('::')).toBe('0:0:0:0::/64');
    expect(addressKey('1:2:3:4:5:6:7:8')).toBe('1:2:3:4::/64');
    expect(addressKey('1:2:3:4::')).toBe('1:2:3:4::/64');
    expect(addressKey('1:2:3:4:5:6:1.2.3.4')).toBe('1:2:3:4::/64');
    expect(addressKey('::1.2.3.4')).toBe('0:0:0:0::/64');
  });

  it('leaves what is not an address as it is', () => {
    expect(addressKey('')).toBe('');
    expect(addressKey('not-an-address')).toBe('not-an-address');
  });
});
