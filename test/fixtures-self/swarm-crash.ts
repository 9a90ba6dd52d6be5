// Child of swarm.test.ts (not a test itself): forms a 1-node swarm running a
// service whose volume is on our plugin, prints what it made as one JSON
// line, then waits to be SIGKILLed: only a later createHosts' sweep can clean
// up (the node's processes by its network namespace, the container by its
// cgroup, then the btrfs and the directories).
import { createSwarm } from '../fixtures/swarm.js';

const swarm = await createSwarm({ teardown: () => {} }, ['solo']);
await swarm.createService('c', ['--mount', 'type=volume,source=cv,target=/data,volume-driver=btrfs'], ['sh', '-c', 'echo x > /data/f && sleep 3600']);
const task = await swarm.waitForTask('c');
const node = swarm.nodes[0]!;
const inspect = await node.docker(['inspect', '--format', '{{.State.Pid}}', task.containerId]);
console.log(
  JSON.stringify({
    netnses: [swarm.hosts.switchNetns, node.host.netns],
    cgroups: [node.host.netns],
    dirs: [node.host.dir],
    mounts: [node.host.btrfs!.mnt],
    images: [node.host.btrfs!.image],
    pids: [node.dockerdPid, node.daemon.pid, Number(inspect.stdout.trim())],
  }),
);
setInterval(() => {}, 60_000);
