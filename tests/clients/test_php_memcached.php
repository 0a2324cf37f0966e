<?php
// php-memcached (libmemcached underneath) against a running shoal (issue 11):
//   php tests/clients/test_php_memcached.php HOST:PORT
// getStats() returns false when libmemcached cannot parse the server's
// version as major.minor.micro; a memcached 1.6 version makes it work. Text
// and binary protocol both; any mismatch exits non-zero.
const MEMCACHED_VERSION = "1.6.18";

function check($cond, $what) {
    if (!$cond) {
        fwrite(STDERR, "FAIL php-memcached: $what\n");
        exit(1);
    }
}

if (!class_exists("Memcached")) {
    fwrite(STDERR, "FAIL php-memcached: no Memcached class: run scripts/install-test-deps.sh (php-cli, php-memcached)\n");
    exit(1);
}
[$host, $port] = explode(":", $argv[1]);
$server = "$host:$port";
foreach (["text" => false, "binary" => true] as $proto => $binary) {
    $m = new Memcached();
    check($m->setOption(Memcached::OPT_BINARY_PROTOCOL, $binary), "$proto: binary option");
    check($m->addServer($host, (int)$port), "$proto: addServer");
    $key = "php-$proto-" . getmypid();
    check($m->set($key, "v1", 300), "$proto: set: " . $m->getResultMessage());
    check($m->get($key) === "v1", "$proto: get");
    check($m->getMulti([$key, "$key-missing"]) === [$key => "v1"], "$proto: getMulti");
    check($m->set("$key-n", "5") && $m->increment("$key-n", 2) === 7, "$proto: increment");
    check($m->delete($key), "$proto: delete");
    check($m->get($key) === false && $m->getResultCode() === Memcached::RES_NOTFOUND, "$proto: get after delete");

    $versions = $m->getVersion();
    check($versions === [$server => MEMCACHED_VERSION], "$proto: getVersion: " . var_export($versions, true));
    $stats = $m->getStats();
    check($stats !== false, "$proto: getStats returned false: " . $m->getResultMessage());
    $mine = $stats[$server] ?? [];
    check(($mine["version"] ?? null) === MEMCACHED_VERSION, "$proto: stats version: " . var_export($mine["version"] ?? null, true));
    check(preg_match('/^\d+\.\d+\.\d+/', $mine["shoal_version"] ?? "") === 1, "$proto: stats shoal_version");
    check(isset($mine["curr_items"], $mine["cmd_get"], $mine["limit_maxbytes"]), "$proto: stats lack the usual counters");
}
echo "php-memcached: text and binary, getVersion and getStats ok\n";
