#!/usr/bin/env python3
"""
The `az iot hub|device|edge|dps` commands and their options, read from the source of the az IoT
extension (github.com/Azure/azure-iot-cli-extension) without installing az: the command tables
(commands.py, iothub/command_map.py, dps/command_map.py) give each command's Python function, the
function's parameters are its arguments, and the argument contexts (_params.py, iothub/params.py,
dps/params.py) give each argument's option strings, the most specific scope winning (as knack does).

    python3 scripts/az-iot-commands.py <git-dir of the extension> > test/fixtures-local/az-iot-commands.json

The output is checked in; scripts/command-surface.ts compares it with edgemq's command surface and
writes README's az coverage table (`npm run surface:update`).
"""
import ast
import json
import subprocess
import sys

GROUPS = ('iot hub', 'iot device', 'iot edge', 'iot dps')
TABLES = ['azext_iot/commands.py', 'azext_iot/iothub/command_map.py', 'azext_iot/dps/command_map.py']
PARAMS = ['azext_iot/_params.py', 'azext_iot/iothub/params.py', 'azext_iot/dps/params.py']
# Argument types az's core defines (azure.cli.core.commands.parameters), not the extension.
CORE_TYPES = {'resource_group_name_type': ['--resource-group', '-g']}
# Generic update commands (az's `generic_update_command`) add these.
GENERIC_UPDATE = [['--set'], ['--add'], ['--remove'], ['--force-string']]
SKIP_PARAMS = {'cmd', 'self', 'instance', 'parameters', 'client'}


def git_show(git_dir, path):
    return subprocess.run(['git', '--git-dir', git_dir, 'show', f'HEAD:{path}'], check=True, capture_output=True, text=True).stdout


def module_path(tmpl):
    return tmpl.split('#')[0].replace('.', '/') + '.py'


def kw(call, name):
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return None


def const(node):
    return node.value if isinstance(node, ast.Constant) else None


def with_blocks(tree, method):
    """Each `with self.<method>(...) as x:` block: (its call, the calls made in its body)."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.With):
            continue
        call = node.items[0].context_expr
        if isinstance(call, ast.Call) and getattr(call.func, 'attr', '') == method:
            yield call, [s.value for s in node.body if isinstance(s, ast.Expr) and isinstance(s.value, ast.Call)]


def command_types(tree):
    """Module-level `x = CliCommandType(operations_tmpl="mod#{}")` → {x: module path}."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and getattr(node.value.func, 'id', '') == 'CliCommandType':
            tmpl = const(kw(node.value, 'operations_tmpl'))
            for t in node.targets:
                if isinstance(t, ast.Name) and tmpl:
                    out[t.id] = module_path(tmpl)
    return out


def commands_of(git_dir):
    types = command_types(ast.parse(git_show(git_dir, 'azext_iot/__init__.py')))
    commands = {}
    for path in TABLES:
        tree = ast.parse(git_show(git_dir, path))
        types = {**types, **command_types(tree)}
        for call, body in with_blocks(tree, 'command_group'):
            group = const(call.args[0])
            group_type = types[kw(call, 'command_type').id]
            group_deprecated = kw(call, 'deprecate_info') is not None
            for c in body:
                kind = getattr(c.func, 'attr', '')
                name = f'{group} {const(c.args[0])}'
                if not name.startswith(GROUPS):
                    continue
                deprecated = group_deprecated or kw(c, 'deprecate_info') is not None
                if kind in ('command', 'show_command'):
                    funcs = [(group_type, const(c.args[1]))]
                    generic = False
                elif kind == 'generic_update_command':
                    custom_type = kw(c, 'custom_func_type')
                    custom_module = types[custom_type.id] if custom_type is not None else group_type
                    funcs = [(group_type, const(kw(c, 'getter_name'))), (group_type, const(kw(c, 'setter_name')))]
                    if kw(c, 'custom_func_name') is not None:
                        funcs.append((custom_module, const(kw(c, 'custom_func_name'))))
                    generic = True
                else:
                    continue
                commands[name] = {'funcs': funcs, 'generic': generic, 'deprecated': deprecated}
    return commands


def function_params(git_dir, module, func, cache):
    if module not in cache:
        cache[module] = ast.parse(git_show(git_dir, module))
    for node in cache[module].body:
        if isinstance(node, ast.FunctionDef) and node.name == func:
            args = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
            return [a.arg for a in args if a.arg not in SKIP_PARAMS]
    raise SystemExit(f'{func} not found in {module}')


def string_list(node, names):
    """The option strings of an options_list (deprecated, hidden ones left out)."""
    if isinstance(node, ast.Name):
        node = names.get(node.id)
    if not isinstance(node, (ast.List, ast.Tuple)):
        return None
    return [e.value for e in node.elts if isinstance(e, ast.Constant)]


def argument_types(tree):
    """Module-level `x = CLIArgumentType(options_list=[...])` → {x: [...]}."""
    out = dict(CORE_TYPES)
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and getattr(node.value.func, 'id', '') == 'CLIArgumentType':
            opts = string_list(kw(node.value, 'options_list'), {})
            for t in node.targets:
                if isinstance(t, ast.Name):
                    out[t.id] = opts
    return out


def registrations(git_dir):
    """[(scope, argument, options or None, ignored)] in registration order."""
    regs = []
    arg_types = {}
    for path in PARAMS:
        tree = ast.parse(git_show(git_dir, path))
        arg_types.update(argument_types(tree))
        for call, body in with_blocks(tree, 'argument_context'):
            scope = const(call.args[0])
            for c in body:
                if getattr(c.func, 'attr', '') != 'argument':
                    continue
                arg = const(c.args[0])
                arg_type = kw(c, 'arg_type')
                ignored = isinstance(arg_type, ast.Name) and arg_type.id == 'ignore_type'
                opts = string_list(kw(c, 'options_list'), {})
                if opts is None and isinstance(arg_type, ast.Name):
                    opts = arg_types.get(arg_type.id)
                hidden = kw(c, 'deprecate_info') is not None
                regs.append((scope, arg, opts, ignored or hidden))
    return regs


def options_of(command, arg, regs):
    """knack's rule: scopes from least to most specific, later registrations override."""
    opts, ignored = None, False
    words = command.split(' ')
    for n in range(len(words) + 1):
        scope = ' '.join(words[:n])
        for s, a, o, ig in regs:
            if s == scope and a == arg:
                if o is not None:
                    opts = o
                ignored = ig
    if ignored:
        return None
    return opts if opts is not None else ['--' + arg.replace('_', '-')]


def main():
    git_dir = sys.argv[1]
    commit = subprocess.run(['git', '--git-dir', git_dir, 'rev-parse', 'HEAD'], check=True, capture_output=True, text=True).stdout.strip()
    regs = registrations(git_dir)
    cache = {}
    out = []
    for name, c in sorted(commands_of(git_dir).items()):
        params = []
        for module, func in c['funcs']:
            for p in function_params(git_dir, module, func, cache):
                if p not in params:
                    params.append(p)
        args = [o for o in (options_of(name, p, regs) for p in params) if o is not None]
        if c['generic']:
            args += GENERIC_UPDATE
        entry = {'command': name, 'options': args}
        if c['deprecated']:
            entry['deprecated'] = True
        out.append(entry)
    doc = {
        'comment': 'az iot hub|device|edge|dps commands and their options (each inner list: one argument, its '
        'option strings), read by scripts/az-iot-commands.py from the az IoT extension source at the commit below. '
        'Regenerate: python3 scripts/az-iot-commands.py <git-dir> > test/fixtures-local/az-iot-commands.json',
        'source': 'https://github.com/Azure/azure-iot-cli-extension',
        'commit': commit,
        'commands': out,
    }
    print(json.dumps(doc, indent=2))


main()
