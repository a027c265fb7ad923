/**
 * Test "machines" on one host: network namespaces joined to a hub namespace by veth pairs, with
 * addresses that exist only inside them (nothing is added to the root namespace or any real
 * interface). A link can be cut the way a dead route or a pulled cable cuts it: packets vanish
 * without a word (the hub's end goes down, and each host knows the hub's MAC address for good, so
 * no ARP failure turns the silence into a quick "no route to host").
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findNatsServer } from '../../coordinator/nats-server.js';

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Why network namespaces cannot be used here, or null when they can. */
export function netnsUnavailable(): string | null {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'creating network namespaces needs root';
  const probe = `tally-${process.pid.toString(36)}-probe`;
  try {
    ip('netns', 'add', probe);
    ip('netns', 'del', probe);
    return null;
  } catch (error) {
    return `ip netns is not permitted here: ${(error as Error).message.split('\n')[0]}`;
  }
}

interface Link {
  hubEnd: string;
  hostEnd: string;
  hubAddress: string;
  hostAddress: string;
}

/** A hub namespace (where the server runs) and hosts linked to it, removed by `remove()`. */
export class TestNetwork {
  readonly hub: string;
  private readonly tag = `${process.pid.toString(36).slice(-4)}${Math.floor(Math.random() * 1296).toString(36)}`;
  private readonly namespaces: string[] = [];
  private readonly links = new Map<string, Link>();

  constructor() {
    this.hub = this.namespace('hub');
  }

  private namespace(name: string): string {
    const ns = `tally-${this.tag}-${name}`;
    ip('netns', 'add', ns);
    this.namespaces.push(ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    return ns;
  }

  /**
   * A host namespace linked to the hub; returns the namespace and the hub's address as seen from
   * it. `subnet` is the first three octets of a /24 private to this link (e.g. "10.210.3").
   */
  addHost(name: string, subnet: string): { ns: string; hubAddress: string } {
    const ns = this.namespace(name);
    const link: Link = { hubEnd: `t${this.tag}h${this.links.size}`, hostEnd: `t${this.tag}x${this.links.size}`, hubAddress: `${subnet}.1`, hostAddress: `${subnet}.2` };
    ip('link', 'add', 'name', link.hubEnd, 'netns', this.hub, 'type', 'veth', 'peer', 'name', link.hostEnd, 'netns', ns);
    ip('-n', this.hub, 'addr', 'add', `${link.hubAddress}/24`, 'dev', link.hubEnd);
    ip('-n', ns, 'addr', 'add', `${link.hostAddress}/24`, 'dev', link.hostEnd);
    ip('-n', this.hub, 'link', 'set', link.hubEnd, 'up');
    ip('-n', ns, 'link', 'set', link.hostEnd, 'up');
    const hubMac = /link\/ether ([0-9a-f:]+)/.exec(ip('-n', this.hub, '-o', 'link', 'show', link.hubEnd))![1]!;
    const hostMac = /link\/ether ([0-9a-f:]+)/.exec(ip('-n', ns, '-o', 'link', 'show', link.hostEnd))![1]!;
    ip('-n', ns, 'neigh', 'replace', link.hubAddress, 'lladdr', hubMac, 'dev', link.hostEnd, 'nud', 'permanent');
    ip('-n', this.hub, 'neigh', 'replace', link.hostAddress, 'lladdr', hostMac, 'dev', link.hubEnd, 'nud', 'permanent');
    this.links.set(ns, link);
    return { ns, hubAddress: link.hubAddress };
  }

  /** Packets between `ns` and the hub vanish from now on; connections are not told. */
  cut(ns: string): void {
    ip('-n', this.hub, 'link', 'set', this.links.get(ns)!.hubEnd, 'down');
  }

  /** The link of `ns` carries packets again; connections that lived on resume. */
  restore(ns: string): void {
    ip('-n', this.hub, 'link', 'set', this.links.get(ns)!.hubEnd, 'up');
  }

  /** Spawns `command` inside namespace `ns`. */
  spawn(ns: string, command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): ChildProcess {
    return spawn('ip', ['netns', 'exec', ns, command, ...args], { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /**
   * A nats-server binary path that runs the real nats-server inside the hub (for
   * TALLY_NATS_SERVER, so that startNatsServer starts it there), written into `dir`.
   */
  serverWrapper(dir: string): string {
    const wrapper = join(dir, 'nats-server-in-hub.sh');
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${this.hub} ${findNatsServer()} "$@"\n`);
    chmodSync(wrapper, 0o755);
    return wrapper;
  }

  /** Deletes every namespace (and with them their links). */
  remove(): void {
    for (const ns of this.namespaces.reverse()) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // already gone
      }
    }
    this.namespaces.length = 0;
  }
}
