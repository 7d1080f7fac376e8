# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_authctl_global_optspecs
    string join \n h/help V/version
end

function __fish_authctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_authctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_authctl_using_subcommand
    set -l cmd (__fish_authctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c authctl -n "__fish_authctl_needs_command" -s h -l help -d 'Print help'
complete -c authctl -n "__fish_authctl_needs_command" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_needs_command" -f -a "login" -d 'Log in to a provider through the system browser (loopback redirect, PKCE)'
complete -c authctl -n "__fish_authctl_needs_command" -f -a "token" -d 'Print a valid access token for an account (only the token, on stdout)'
complete -c authctl -n "__fish_authctl_needs_command" -f -a "status" -d 'Show the agent, its secret store and every account'
complete -c authctl -n "__fish_authctl_needs_command" -f -a "logout" -d 'Forget an account: revoke its refresh token at the provider and delete its secrets'
complete -c authctl -n "__fish_authctl_needs_command" -f -a "mcp" -d 'Bridge an MCP host (stdio) to a remote MCP server (Streamable HTTP), with the agent\'s tokens: `"command": "authctl", "args": ["mcp", "https://mcp.example.com/mcp"]`'
complete -c authctl -n "__fish_authctl_needs_command" -f -a "provider" -d 'Add, list or remove identity providers in config.toml'
complete -c authctl -n "__fish_authctl_needs_command" -f -a "exec" -d 'Run a command with a token in its environment, or in a file kept fresh'
complete -c authctl -n "__fish_authctl_needs_command" -f -a "route" -d 'Which account serves which developer tool\'s target (git URLs)'
complete -c authctl -n "__fish_authctl_needs_command" -f -a "git-credential" -d 'git credential helper: `git config credential.https://HOST.helper \'!authctl git-credential\'`'
complete -c authctl -n "__fish_authctl_needs_command" -f -a "kubectl-credential" -d 'kubectl exec credential plugin: prints an ExecCredential (`users[].user.exec`)'
complete -c authctl -n "__fish_authctl_needs_command" -f -a "access" -d 'Which programs may have tokens: remembered grants and the audit log'
complete -c authctl -n "__fish_authctl_needs_command" -f -a "agent" -d 'Start, stop, reload, inspect, install or uninstall the agent'
complete -c authctl -n "__fish_authctl_needs_command" -f -a "doctor" -d 'Check the set-up (socket, agent, secret store, keyring, service, browser, providers)'
complete -c authctl -n "__fish_authctl_needs_command" -f -a "generate" -d 'Generate shell completions or the man page'
complete -c authctl -n "__fish_authctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand login" -l account -d 'Name of the account to create or log in again (default: the provider\'s only account, or the provider\'s name for its first)' -r
complete -c authctl -n "__fish_authctl_using_subcommand login" -l scope -d 'Scopes for this login (repeatable; default: the provider\'s configured scopes)' -r
complete -c authctl -n "__fish_authctl_using_subcommand login" -l timeout -d 'Seconds to wait for the browser login (default: the provider\'s login_timeout_seconds)' -r
complete -c authctl -n "__fish_authctl_using_subcommand login" -l no-browser -d 'Only print the URL; do not open a browser'
complete -c authctl -n "__fish_authctl_using_subcommand login" -l device -d 'Use the device flow (RFC 8628): shows a code to enter on any device with a browser'
complete -c authctl -n "__fish_authctl_using_subcommand login" -l other-user -d 'Let a login of an existing account come back as another user, who then owns the account (without it, a re-login as another user changes nothing and fails)'
complete -c authctl -n "__fish_authctl_using_subcommand login" -s h -l help -d 'Print help'
complete -c authctl -n "__fish_authctl_using_subcommand login" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand token" -l scope -d 'Ask for a subset of the account\'s scopes (repeatable); cached under its own key' -r
complete -c authctl -n "__fish_authctl_using_subcommand token" -l resource -d 'RFC 8707 resource indicator (audience) for the token' -r
complete -c authctl -n "__fish_authctl_using_subcommand token" -l min-ttl -d 'The token must stay valid at least this many seconds (default: the agent\'s min_ttl_seconds)' -r
complete -c authctl -n "__fish_authctl_using_subcommand token" -l refresh -d 'Refresh now even if the cached token is still valid'
complete -c authctl -n "__fish_authctl_using_subcommand token" -l interactive -d 'If the account needs a login (or does not exist yet but a provider of that name does), have the agent open the browser and wait for it; concurrent callers share one login'
complete -c authctl -n "__fish_authctl_using_subcommand token" -l json -d 'Print a JSON object (access_token, token_type, expires_at, scopes, account) instead'
complete -c authctl -n "__fish_authctl_using_subcommand token" -s h -l help -d 'Print help'
complete -c authctl -n "__fish_authctl_using_subcommand token" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand status" -l json -d 'Print JSON for scripts'
complete -c authctl -n "__fish_authctl_using_subcommand status" -s h -l help -d 'Print help'
complete -c authctl -n "__fish_authctl_using_subcommand status" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand logout" -l timeout -d 'With --end-session: seconds to wait for the provider to redirect back (default: the provider\'s login_timeout_seconds, at most 120)' -r
complete -c authctl -n "__fish_authctl_using_subcommand logout" -l no-revoke -d 'Do not revoke the refresh token at the provider; only delete it here'
complete -c authctl -n "__fish_authctl_using_subcommand logout" -l end-session -d 'Also end the browser session at the provider (OpenID Connect RP-initiated logout): opens its end_session_endpoint and waits for it to redirect back to a loopback address'
complete -c authctl -n "__fish_authctl_using_subcommand logout" -l no-browser -d 'With --end-session: only print the URL; do not open a browser'
complete -c authctl -n "__fish_authctl_using_subcommand logout" -s h -l help -d 'Print help'
complete -c authctl -n "__fish_authctl_using_subcommand logout" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand mcp" -l account -d 'The account whose tokens to send (default: the provider the zero-config login to URL remembered; with none yet, the first request logs in)' -r
complete -c authctl -n "__fish_authctl_using_subcommand mcp" -l header -d 'An extra HTTP header for every request to the server, as `Name: value` (repeatable)' -r
complete -c authctl -n "__fish_authctl_using_subcommand mcp" -s h -l help -d 'Print help'
complete -c authctl -n "__fish_authctl_using_subcommand mcp" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand provider; and not __fish_seen_subcommand_from add list presets remove help" -s h -l help -d 'Print help'
complete -c authctl -n "__fish_authctl_using_subcommand provider; and not __fish_seen_subcommand_from add list presets remove help" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand provider; and not __fish_seen_subcommand_from add list presets remove help" -f -a "add" -d 'Add a provider (OpenID Connect discovery from --issuer, or a --preset)'
complete -c authctl -n "__fish_authctl_using_subcommand provider; and not __fish_seen_subcommand_from add list presets remove help" -f -a "list" -d 'List the configured providers'
complete -c authctl -n "__fish_authctl_using_subcommand provider; and not __fish_seen_subcommand_from add list presets remove help" -f -a "presets" -d 'List the provider presets (`provider add NAME --preset P`)'
complete -c authctl -n "__fish_authctl_using_subcommand provider; and not __fish_seen_subcommand_from add list presets remove help" -f -a "remove" -d 'Remove a provider (log out its accounts first)'
complete -c authctl -n "__fish_authctl_using_subcommand provider; and not __fish_seen_subcommand_from add list presets remove help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from add" -l issuer -d 'The issuer URL; endpoints are discovered from it (not needed with --preset, or with --authorization-endpoint and --token-endpoint for providers without discovery)' -r
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from add" -l authorization-endpoint -d 'Explicit authorization endpoint (wins over discovery; with --token-endpoint, replaces it)' -r
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from add" -l token-endpoint -d 'Explicit token endpoint' -r
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from add" -l device-authorization-endpoint -d 'Explicit device authorization endpoint (RFC 8628), for `authctl login --device`' -r
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from add" -l revocation-endpoint -d 'Explicit revocation endpoint (RFC 7009), used by `authctl logout`' -r
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from add" -l userinfo-endpoint -d 'Explicit userinfo endpoint' -r
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from add" -l jwks-uri -d 'Explicit JWKS URL for ID-token signatures' -r
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from add" -l end-session-endpoint -d 'Explicit end-session endpoint, for `authctl logout --end-session`' -r
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from add" -l resource -d 'RFC 8707 resource indicator (the API or MCP server) sent with every token request' -r
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from add" -l redirect-host -d 'Loopback host of the redirect URI, as registered: 127.0.0.1 (default), [::1] or localhost' -r
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from add" -l redirect-port -d 'Fixed redirect port, for servers that match redirect URIs exactly (repeatable; tried in order)' -r
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from add" -l preset -d 'Fill endpoints and quirks from a preset: google, microsoft, github, gitlab, okta, auth0, keycloak (see `authctl provider presets`)' -r
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from add" -l tenant -d 'Preset argument: the Entra tenant (id, domain, `organizations` or `common`)' -r
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from add" -l domain -d 'Preset argument: the Okta or Auth0 domain' -r
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from add" -l realm -d 'Preset argument: the Keycloak realm' -r
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from add" -l base-url -d 'Preset argument: the Keycloak or self-managed GitLab base URL' -r
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from add" -l audience -d 'Preset argument: the Auth0 API audience' -r
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from add" -l auth-server -d 'Preset argument: the Okta authorization server (default `default`)' -r
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from add" -l client-id -d 'The OAuth client id registered at the provider (a native/desktop client)' -r
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from add" -l scope -d 'Default scopes for logins (repeatable), e.g. --scope openid --scope offline_access' -r
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from add" -l client-secret-stdin -d 'Read a client secret from stdin (for providers that insist on one); stored in the secret store, never in config.toml'
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from add" -l replace -d 'Replace a provider of the same name'
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from list" -l json -d 'Print JSON for scripts'
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from presets" -s h -l help -d 'Print help'
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from presets" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a provider (OpenID Connect discovery from --issuer, or a --preset)'
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the configured providers'
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from help" -f -a "presets" -d 'List the provider presets (`provider add NAME --preset P`)'
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove a provider (log out its accounts first)'
complete -c authctl -n "__fish_authctl_using_subcommand provider; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand exec" -l env -d 'The environment variable that carries the token (default AUTHCTL_TOKEN)' -r
complete -c authctl -n "__fish_authctl_using_subcommand exec" -l token-file -d 'Write the token to this file instead (mode 0600; a missing directory is made 0700), rewrite it whenever the agent refreshes the token, and remove it when the child exits; the child gets its path in AUTHCTL_TOKEN_FILE' -r -F
complete -c authctl -n "__fish_authctl_using_subcommand exec" -l scope -d 'Ask for a subset of the account\'s scopes (repeatable)' -r
complete -c authctl -n "__fish_authctl_using_subcommand exec" -l resource -d 'RFC 8707 resource indicator (audience) for the token' -r
complete -c authctl -n "__fish_authctl_using_subcommand exec" -s h -l help -d 'Print help'
complete -c authctl -n "__fish_authctl_using_subcommand exec" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand route; and not __fish_seen_subcommand_from add list remove help" -s h -l help -d 'Print help'
complete -c authctl -n "__fish_authctl_using_subcommand route; and not __fish_seen_subcommand_from add list remove help" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand route; and not __fish_seen_subcommand_from add list remove help" -f -a "add" -d 'Route a tool\'s target to an account (git URL prefix, kubectl cluster, docker registry)'
complete -c authctl -n "__fish_authctl_using_subcommand route; and not __fish_seen_subcommand_from add list remove help" -f -a "list" -d 'List the routes'
complete -c authctl -n "__fish_authctl_using_subcommand route; and not __fish_seen_subcommand_from add list remove help" -f -a "remove" -d 'Remove the route of a tool for a target'
complete -c authctl -n "__fish_authctl_using_subcommand route; and not __fish_seen_subcommand_from add list remove help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand route; and __fish_seen_subcommand_from add" -l scope -d 'Ask for a subset of the account\'s scopes (repeatable)' -r
complete -c authctl -n "__fish_authctl_using_subcommand route; and __fish_seen_subcommand_from add" -l resource -d 'RFC 8707 resource indicator for the tokens' -r
complete -c authctl -n "__fish_authctl_using_subcommand route; and __fish_seen_subcommand_from add" -l username -d 'The user name presented beside the token (default: x-access-token for GitHub, else oauth2)' -r
complete -c authctl -n "__fish_authctl_using_subcommand route; and __fish_seen_subcommand_from add" -l replace -d 'Replace a route of the same tool and target'
complete -c authctl -n "__fish_authctl_using_subcommand route; and __fish_seen_subcommand_from add" -l install -d 'Also configure the tool to ask authctl (git: `git config --global credential.TARGET.helper \'!authctl git-credential\'`; kubectl: an exec user `authctl-ACCOUNT` in the kubeconfig, set on every context of the cluster; docker: `credHelpers` in ~/.docker/config.json)'
complete -c authctl -n "__fish_authctl_using_subcommand route; and __fish_seen_subcommand_from add" -l id-token -d 'kubectl with --install: the cluster takes the account\'s ID token, not its access token'
complete -c authctl -n "__fish_authctl_using_subcommand route; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand route; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand route; and __fish_seen_subcommand_from list" -l json -d 'Print JSON for scripts'
complete -c authctl -n "__fish_authctl_using_subcommand route; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c authctl -n "__fish_authctl_using_subcommand route; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand route; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand route; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand route; and __fish_seen_subcommand_from help" -f -a "add" -d 'Route a tool\'s target to an account (git URL prefix, kubectl cluster, docker registry)'
complete -c authctl -n "__fish_authctl_using_subcommand route; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the routes'
complete -c authctl -n "__fish_authctl_using_subcommand route; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove the route of a tool for a target'
complete -c authctl -n "__fish_authctl_using_subcommand route; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand git-credential" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c authctl -n "__fish_authctl_using_subcommand git-credential" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand kubectl-credential" -l id-token -d 'Hand out the account\'s ID token (for clusters that take OIDC ID tokens)'
complete -c authctl -n "__fish_authctl_using_subcommand kubectl-credential" -s h -l help -d 'Print help'
complete -c authctl -n "__fish_authctl_using_subcommand kubectl-credential" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand access; and not __fish_seen_subcommand_from list revoke log help" -s h -l help -d 'Print help'
complete -c authctl -n "__fish_authctl_using_subcommand access; and not __fish_seen_subcommand_from list revoke log help" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand access; and not __fish_seen_subcommand_from list revoke log help" -f -a "list" -d 'List the remembered grants ("allow for a while" answers): program, account, key, expiry'
complete -c authctl -n "__fish_authctl_using_subcommand access; and not __fish_seen_subcommand_from list revoke log help" -f -a "revoke" -d 'Revoke remembered grants: the program is asked again next time'
complete -c authctl -n "__fish_authctl_using_subcommand access; and not __fish_seen_subcommand_from list revoke log help" -f -a "log" -d 'Show the audit log: every token handed out or refused, every administrative call'
complete -c authctl -n "__fish_authctl_using_subcommand access; and not __fish_seen_subcommand_from list revoke log help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand access; and __fish_seen_subcommand_from list" -l json -d 'Print JSON for scripts'
complete -c authctl -n "__fish_authctl_using_subcommand access; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c authctl -n "__fish_authctl_using_subcommand access; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand access; and __fish_seen_subcommand_from revoke" -l all -d 'Revoke every grant'
complete -c authctl -n "__fish_authctl_using_subcommand access; and __fish_seen_subcommand_from revoke" -s h -l help -d 'Print help'
complete -c authctl -n "__fish_authctl_using_subcommand access; and __fish_seen_subcommand_from revoke" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand access; and __fish_seen_subcommand_from log" -l since -d 'Only entries since then: a duration back from now (`30s`, `15m`, `2h`, `7d`) or an RFC 3339 time (`2026-12-03T09:00:00Z`)' -r
complete -c authctl -n "__fish_authctl_using_subcommand access; and __fish_seen_subcommand_from log" -l account -d 'Only this account\'s entries' -r
complete -c authctl -n "__fish_authctl_using_subcommand access; and __fish_seen_subcommand_from log" -l json -d 'Print the log\'s JSON lines as they are (one object per line)'
complete -c authctl -n "__fish_authctl_using_subcommand access; and __fish_seen_subcommand_from log" -l denied -d 'Only refusals'
complete -c authctl -n "__fish_authctl_using_subcommand access; and __fish_seen_subcommand_from log" -s h -l help -d 'Print help'
complete -c authctl -n "__fish_authctl_using_subcommand access; and __fish_seen_subcommand_from log" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand access; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the remembered grants ("allow for a while" answers): program, account, key, expiry'
complete -c authctl -n "__fish_authctl_using_subcommand access; and __fish_seen_subcommand_from help" -f -a "revoke" -d 'Revoke remembered grants: the program is asked again next time'
complete -c authctl -n "__fish_authctl_using_subcommand access; and __fish_seen_subcommand_from help" -f -a "log" -d 'Show the audit log: every token handed out or refused, every administrative call'
complete -c authctl -n "__fish_authctl_using_subcommand access; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand agent; and not __fish_seen_subcommand_from start stop status reload install uninstall help" -s h -l help -d 'Print help'
complete -c authctl -n "__fish_authctl_using_subcommand agent; and not __fish_seen_subcommand_from start stop status reload install uninstall help" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand agent; and not __fish_seen_subcommand_from start stop status reload install uninstall help" -f -a "start" -d 'Start authctl-agent in the background and wait until it answers'
complete -c authctl -n "__fish_authctl_using_subcommand agent; and not __fish_seen_subcommand_from start stop status reload install uninstall help" -f -a "stop" -d 'Stop the running agent (it drains requests and removes its socket)'
complete -c authctl -n "__fish_authctl_using_subcommand agent; and not __fish_seen_subcommand_from start stop status reload install uninstall help" -f -a "status" -d 'Show whether the agent runs, and its pid, version and paths'
complete -c authctl -n "__fish_authctl_using_subcommand agent; and not __fish_seen_subcommand_from start stop status reload install uninstall help" -f -a "reload" -d 'Make the agent re-read config.toml (as SIGHUP does)'
complete -c authctl -n "__fish_authctl_using_subcommand agent; and not __fish_seen_subcommand_from start stop status reload install uninstall help" -f -a "install" -d 'Install and start the user service (systemd socket + service units, or a launchd agent)'
complete -c authctl -n "__fish_authctl_using_subcommand agent; and not __fish_seen_subcommand_from start stop status reload install uninstall help" -f -a "uninstall" -d 'Stop and remove the user service'
complete -c authctl -n "__fish_authctl_using_subcommand agent; and not __fish_seen_subcommand_from start stop status reload install uninstall help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand agent; and __fish_seen_subcommand_from start" -s h -l help -d 'Print help'
complete -c authctl -n "__fish_authctl_using_subcommand agent; and __fish_seen_subcommand_from start" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand agent; and __fish_seen_subcommand_from stop" -s h -l help -d 'Print help'
complete -c authctl -n "__fish_authctl_using_subcommand agent; and __fish_seen_subcommand_from stop" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand agent; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c authctl -n "__fish_authctl_using_subcommand agent; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand agent; and __fish_seen_subcommand_from reload" -s h -l help -d 'Print help'
complete -c authctl -n "__fish_authctl_using_subcommand agent; and __fish_seen_subcommand_from reload" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand agent; and __fish_seen_subcommand_from install" -l print -d 'Print the files instead of writing them'
complete -c authctl -n "__fish_authctl_using_subcommand agent; and __fish_seen_subcommand_from install" -s h -l help -d 'Print help'
complete -c authctl -n "__fish_authctl_using_subcommand agent; and __fish_seen_subcommand_from install" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand agent; and __fish_seen_subcommand_from uninstall" -s h -l help -d 'Print help'
complete -c authctl -n "__fish_authctl_using_subcommand agent; and __fish_seen_subcommand_from uninstall" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand agent; and __fish_seen_subcommand_from help" -f -a "start" -d 'Start authctl-agent in the background and wait until it answers'
complete -c authctl -n "__fish_authctl_using_subcommand agent; and __fish_seen_subcommand_from help" -f -a "stop" -d 'Stop the running agent (it drains requests and removes its socket)'
complete -c authctl -n "__fish_authctl_using_subcommand agent; and __fish_seen_subcommand_from help" -f -a "status" -d 'Show whether the agent runs, and its pid, version and paths'
complete -c authctl -n "__fish_authctl_using_subcommand agent; and __fish_seen_subcommand_from help" -f -a "reload" -d 'Make the agent re-read config.toml (as SIGHUP does)'
complete -c authctl -n "__fish_authctl_using_subcommand agent; and __fish_seen_subcommand_from help" -f -a "install" -d 'Install and start the user service (systemd socket + service units, or a launchd agent)'
complete -c authctl -n "__fish_authctl_using_subcommand agent; and __fish_seen_subcommand_from help" -f -a "uninstall" -d 'Stop and remove the user service'
complete -c authctl -n "__fish_authctl_using_subcommand agent; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand doctor" -l json -d 'Print JSON for scripts (with each problem\'s underlying error in full)'
complete -c authctl -n "__fish_authctl_using_subcommand doctor" -s v -l verbose -d 'Also print each problem\'s underlying error in full'
complete -c authctl -n "__fish_authctl_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c authctl -n "__fish_authctl_using_subcommand doctor" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand generate; and not __fish_seen_subcommand_from completions man help" -s h -l help -d 'Print help'
complete -c authctl -n "__fish_authctl_using_subcommand generate; and not __fish_seen_subcommand_from completions man help" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand generate; and not __fish_seen_subcommand_from completions man help" -f -a "completions" -d 'Print shell completions (bash, zsh, fish, elvish, powershell)'
complete -c authctl -n "__fish_authctl_using_subcommand generate; and not __fish_seen_subcommand_from completions man help" -f -a "man" -d 'Print the man page (roff)'
complete -c authctl -n "__fish_authctl_using_subcommand generate; and not __fish_seen_subcommand_from completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand generate; and __fish_seen_subcommand_from completions" -s h -l help -d 'Print help'
complete -c authctl -n "__fish_authctl_using_subcommand generate; and __fish_seen_subcommand_from completions" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand generate; and __fish_seen_subcommand_from man" -s h -l help -d 'Print help'
complete -c authctl -n "__fish_authctl_using_subcommand generate; and __fish_seen_subcommand_from man" -s V -l version -d 'Print version'
complete -c authctl -n "__fish_authctl_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "completions" -d 'Print shell completions (bash, zsh, fish, elvish, powershell)'
complete -c authctl -n "__fish_authctl_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "man" -d 'Print the man page (roff)'
complete -c authctl -n "__fish_authctl_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand help; and not __fish_seen_subcommand_from login token status logout mcp provider exec route git-credential kubectl-credential access agent doctor generate help" -f -a "login" -d 'Log in to a provider through the system browser (loopback redirect, PKCE)'
complete -c authctl -n "__fish_authctl_using_subcommand help; and not __fish_seen_subcommand_from login token status logout mcp provider exec route git-credential kubectl-credential access agent doctor generate help" -f -a "token" -d 'Print a valid access token for an account (only the token, on stdout)'
complete -c authctl -n "__fish_authctl_using_subcommand help; and not __fish_seen_subcommand_from login token status logout mcp provider exec route git-credential kubectl-credential access agent doctor generate help" -f -a "status" -d 'Show the agent, its secret store and every account'
complete -c authctl -n "__fish_authctl_using_subcommand help; and not __fish_seen_subcommand_from login token status logout mcp provider exec route git-credential kubectl-credential access agent doctor generate help" -f -a "logout" -d 'Forget an account: revoke its refresh token at the provider and delete its secrets'
complete -c authctl -n "__fish_authctl_using_subcommand help; and not __fish_seen_subcommand_from login token status logout mcp provider exec route git-credential kubectl-credential access agent doctor generate help" -f -a "mcp" -d 'Bridge an MCP host (stdio) to a remote MCP server (Streamable HTTP), with the agent\'s tokens: `"command": "authctl", "args": ["mcp", "https://mcp.example.com/mcp"]`'
complete -c authctl -n "__fish_authctl_using_subcommand help; and not __fish_seen_subcommand_from login token status logout mcp provider exec route git-credential kubectl-credential access agent doctor generate help" -f -a "provider" -d 'Add, list or remove identity providers in config.toml'
complete -c authctl -n "__fish_authctl_using_subcommand help; and not __fish_seen_subcommand_from login token status logout mcp provider exec route git-credential kubectl-credential access agent doctor generate help" -f -a "exec" -d 'Run a command with a token in its environment, or in a file kept fresh'
complete -c authctl -n "__fish_authctl_using_subcommand help; and not __fish_seen_subcommand_from login token status logout mcp provider exec route git-credential kubectl-credential access agent doctor generate help" -f -a "route" -d 'Which account serves which developer tool\'s target (git URLs)'
complete -c authctl -n "__fish_authctl_using_subcommand help; and not __fish_seen_subcommand_from login token status logout mcp provider exec route git-credential kubectl-credential access agent doctor generate help" -f -a "git-credential" -d 'git credential helper: `git config credential.https://HOST.helper \'!authctl git-credential\'`'
complete -c authctl -n "__fish_authctl_using_subcommand help; and not __fish_seen_subcommand_from login token status logout mcp provider exec route git-credential kubectl-credential access agent doctor generate help" -f -a "kubectl-credential" -d 'kubectl exec credential plugin: prints an ExecCredential (`users[].user.exec`)'
complete -c authctl -n "__fish_authctl_using_subcommand help; and not __fish_seen_subcommand_from login token status logout mcp provider exec route git-credential kubectl-credential access agent doctor generate help" -f -a "access" -d 'Which programs may have tokens: remembered grants and the audit log'
complete -c authctl -n "__fish_authctl_using_subcommand help; and not __fish_seen_subcommand_from login token status logout mcp provider exec route git-credential kubectl-credential access agent doctor generate help" -f -a "agent" -d 'Start, stop, reload, inspect, install or uninstall the agent'
complete -c authctl -n "__fish_authctl_using_subcommand help; and not __fish_seen_subcommand_from login token status logout mcp provider exec route git-credential kubectl-credential access agent doctor generate help" -f -a "doctor" -d 'Check the set-up (socket, agent, secret store, keyring, service, browser, providers)'
complete -c authctl -n "__fish_authctl_using_subcommand help; and not __fish_seen_subcommand_from login token status logout mcp provider exec route git-credential kubectl-credential access agent doctor generate help" -f -a "generate" -d 'Generate shell completions or the man page'
complete -c authctl -n "__fish_authctl_using_subcommand help; and not __fish_seen_subcommand_from login token status logout mcp provider exec route git-credential kubectl-credential access agent doctor generate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from provider" -f -a "add" -d 'Add a provider (OpenID Connect discovery from --issuer, or a --preset)'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from provider" -f -a "list" -d 'List the configured providers'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from provider" -f -a "presets" -d 'List the provider presets (`provider add NAME --preset P`)'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from provider" -f -a "remove" -d 'Remove a provider (log out its accounts first)'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from route" -f -a "add" -d 'Route a tool\'s target to an account (git URL prefix, kubectl cluster, docker registry)'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from route" -f -a "list" -d 'List the routes'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from route" -f -a "remove" -d 'Remove the route of a tool for a target'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from access" -f -a "list" -d 'List the remembered grants ("allow for a while" answers): program, account, key, expiry'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from access" -f -a "revoke" -d 'Revoke remembered grants: the program is asked again next time'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from access" -f -a "log" -d 'Show the audit log: every token handed out or refused, every administrative call'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from agent" -f -a "start" -d 'Start authctl-agent in the background and wait until it answers'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from agent" -f -a "stop" -d 'Stop the running agent (it drains requests and removes its socket)'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from agent" -f -a "status" -d 'Show whether the agent runs, and its pid, version and paths'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from agent" -f -a "reload" -d 'Make the agent re-read config.toml (as SIGHUP does)'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from agent" -f -a "install" -d 'Install and start the user service (systemd socket + service units, or a launchd agent)'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from agent" -f -a "uninstall" -d 'Stop and remove the user service'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from generate" -f -a "completions" -d 'Print shell completions (bash, zsh, fish, elvish, powershell)'
complete -c authctl -n "__fish_authctl_using_subcommand help; and __fish_seen_subcommand_from generate" -f -a "man" -d 'Print the man page (roff)'
