"""The Pulumi program (Pulumi.yaml points here): read the stack's config into the WalletPlatform model
and deploy it in the configured mode. Everything lives in walletplatform.stacks."""

from walletplatform.stacks import program

program.run()
