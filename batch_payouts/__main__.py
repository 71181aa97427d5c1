from batch_payouts.cli.main import main

if __name__ == "__main__":
    main()
