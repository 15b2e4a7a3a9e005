# Sourced by .ci/run: start a throw-away PostgreSQL cluster on loopback for the
# distributed-sweep test, and export SPECBENCH_TEST_POSTGRES_URL. Debian's package
# creates cluster 15/main on install; where it did not (or an old one is broken), make one.
pg_version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h 2>/dev/null | grep -q "^${pg_version} main"; then
  pg_createcluster "$pg_version" main >/dev/null
fi
pg_ctlcluster "$pg_version" main start 2>/dev/null || true
for _ in $(seq 1 30); do
  if su postgres -c "psql -qAtc 'select 1'" >/dev/null 2>&1; then break; fi
  sleep 1
done
su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'specbench'\"" >/dev/null
su postgres -c "psql -qAtc \"SELECT 1 FROM pg_database WHERE datname='specbench_test'\"" | grep -q 1 \
  || su postgres -c "createdb specbench_test"
port=$(pg_lsclusters -h | awk -v v="$pg_version" '$1==v && $2=="main" {print $3}')
SPECBENCH_TEST_POSTGRES_URL="postgresql://postgres:specbench@127.0.0.1:${port}/specbench_test"
