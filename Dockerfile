# The managed Docker plugin's root filesystem (see plugin/config.json and
# scripts/build-plugin.sh). Two stages: build the addon and the TypeScript,
# then a slim runtime with only what `buttervolume run` needs. No btrfs-progs,
# no ssh, no rsync in the image: the plugin spawns nothing.
FROM node:20-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json .npmrc binding.gyp tsconfig.json tsconfig.build.json ./
COPY native native
COPY scripts scripts
COPY prebuilds prebuilds
RUN npm ci --no-audit --no-fund --ignore-scripts \
 && npx node-gyp rebuild
COPY src src
COPY bin bin
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /opt/buttervolume
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules node_modules
COPY --from=build /src/build/Release/buttervolume.node build/Release/buttervolume.node
COPY --from=build /src/dist dist
COPY --from=build /src/bin bin
RUN ln -s /opt/buttervolume/bin/buttervolume.js /usr/local/bin/buttervolume \
 && mkdir -p /run/docker/plugins /var/lib/buttervolume/volumes /var/lib/buttervolume/snapshots /etc/buttervolume
ENTRYPOINT ["node", "/opt/buttervolume/bin/buttervolume.js", "run"]
