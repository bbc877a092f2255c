// Runs the real connector-host binary for a test: a temporary data folder, the loopback plugin
// with the test's settings (or any plugins section given as YAML), any free port, and the
// one-time login link read from its output.
import {spawn} from 'node:child_process';
import {mkdtempSync, writeFileSync, rmSync, mkdirSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

export function requiredEnv(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through ctest (tests/ui)`);
  return value;
}

export class HostProcess {
  // loopbackSettings: the loopback plugin's settings (qr_ttl_ms, qr_pairs_after_ms, …).
  // pluginsYaml: instead of the loopback plugin, this `plugins:` section (the real channels).
  constructor(loopbackSettings = {}, {pluginsYaml = null} = {}) {
    this.binary = requiredEnv('CONNECTOR_HOST_BINARY');
    this.pluginDir = requiredEnv('CONNECTOR_PLUGIN_DIR');
    this.uiDir = process.env.CONNECTOR_UI_DIR ?? path.resolve(here, '../../../ui');
    this.dir = mkdtempSync(path.join(tmpdir(), 'connector-ui-test-'));
    mkdirSync(path.join(this.dir, 'data'));
    this.settings = loopbackSettings;
    this.pluginsYaml = pluginsYaml;
    this.port = 0;
    this.child = null;
    this.output = '';
  }

  writeConfig() {
    const settings = Object.entries(this.settings)
        .map(([key, value]) => `      ${key}: ${JSON.stringify(value)}`).join('\n');
    const plugins = this.pluginsYaml ?? [
      'plugins:', '  loopback:', '    enabled: true',
      settings ? `    settings:\n${settings}` : '',
    ].join('\n');
    const config = [
      'listen:', '  address: 127.0.0.1', `  port: ${this.port}`,
      `data_dir: ${JSON.stringify(path.join(this.dir, 'data'))}`,
      `plugin_dir: ${JSON.stringify(this.pluginDir)}`,
      `ui_dir: ${JSON.stringify(this.uiDir)}`,
      'log:', '  level: info',
      plugins,
    ].join('\n') + '\n';
    this.configFile = path.join(this.dir, 'connector-host.yaml');
    writeFileSync(this.configFile, config);
  }

  // Starts the host and waits for "running at …"; the first start also prints the login link.
  async start() {
    this.writeConfig();
    const child = spawn(this.binary, ['--config', this.configFile],
                        {stdio: ['ignore', 'pipe', 'pipe']});
    this.child = child;
    this.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({code, signal})));
    let stdout = '';
    child.stderr.on('data', (chunk) => { this.output += chunk; });
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`host did not start:\n${this.output}${stdout}`)),
                               30000);
      child.stdout.on('data', (chunk) => {
        stdout += chunk;
        this.output += chunk;
        const running = /running at (http:\/\/127\.0\.0\.1:(\d+))/.exec(stdout);
        const ready = running && (/#login=(\S+)/.test(stdout) || /Sign in with a token/.test(stdout));
        if (!ready) return;
        clearTimeout(timer);
        this.url = running[1];
        this.port = Number(running[2]);
        const link = /(http:\/\/\S+#login=(\S+))/.exec(stdout);
        if (link) this.loginLink = link[1];
        resolve();
      });
      child.on('exit', () => reject(new Error(`host exited at start:\n${this.output}`)));
    });
  }

  async stop() {
    if (!this.child || this.child.exitCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10000);
    await this.exited;
    clearTimeout(timer);
  }

  // Stops and starts again on the same port, as an admin restarting the service would.
  async restart() {
    await this.stop();
    await this.start();
  }

  async cleanup() {
    await this.stop();
    rmSync(this.dir, {recursive: true, force: true});
  }

  // Direct API calls, for setting up and checking what the screen shows.
  async api(token, method, route, body) {
    const response = await fetch(`${this.url}/api/v1${route}`, {
      method,
      headers: {Authorization: `Bearer ${token}`, 'Content-Type': 'application/json'},
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return {status: response.status, json: text ? JSON.parse(text) : null};
  }
}
