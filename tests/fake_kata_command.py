"""A subcommand module as harness.commands.train will be: configure_parser(parser) and run(args) -> int."""


def configure_parser(parser):
    parser.add_argument("--answer", type=int, required=True)


def run(args):
    return args.answer
