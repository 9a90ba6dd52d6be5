# The managed plugin's root filesystem. Built by scripts/plugin/build.sh
# (`npm run plugin:build`), which first stages the build context: Node.js at
# /usr/local/bin/node and the package at /opt/buttervolume (scripts/plugin/
# stage.sh), and makes or names the base image (scripts/plugin/base.sh): by
# default a base holding only the shared libraries Node.js and the addon need,
# imported locally, so no registry is used. No btrfs-progs, no ssh, no rsync,
# no shell, no npm: the plugin spawns nothing.
ARG BASE
FROM ${BASE}
COPY . /
WORKDIR /opt/buttervolume
ENTRYPOINT ["/usr/local/bin/node", "/opt/buttervolume/bin/buttervolume.cjs", "run"]
