// pm2 ecosystem file: pm2 start deploy/ecosystem.config.js
// /usr/local/bin holds orchestrator and orchestrator-spawn (the helper that starts each worker, found beside it).
// pm2 stops apps with SIGINT, which orchestrator treats like SIGTERM (drain, then stop workers).
module.exports = {
  apps: [
    {
      name: "orchestrator",
      script: "/usr/local/bin/orchestrator",
      args: ["watch", "--config", "config/orchestrator.toml"],
      cwd: __dirname + "/..",
      interpreter: "none",
      // Signal the daemon only, not every process in its tree: the daemon gives running workers
      // shutdown_grace and then ends their process groups itself (a worker pm2 signalled directly would
      // look cut short, not finished).
      treekill: false,
      // Must exceed [limits] shutdown_grace (30 s in the bundled config) plus a moment to end the workers'
      // groups and record them, or pm2 SIGKILLs the daemon mid-drain. Raise it with shutdown_grace.
      kill_timeout: 35000,
      autorestart: true,
      // Usage (64), another owner of the state dir or Inbox (69), config error (78): restarting cannot help.
      stop_exit_codes: [64, 69, 78],
      max_restarts: 10,
      restart_delay: 2000,
    },
  ],
};
